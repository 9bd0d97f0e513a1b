process TEMPLEARN_TETRIS {
    tag "${meta.id}"
    label 'process_medium'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    tuple val(meta), val(classes), path(templates, arity: '1..*', stageAs: 'templates?/*'), path(distractors, arity: '0..*', stageAs: 'distractors?/*')

    output:
    tuple val(meta), path("${prefix}"), emit: sample
    tuple val(meta), path("${prefix}/molecules.star"), emit: molecules
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'sample'
    def template_args = [classes, templates].transpose().collect { name, maps -> "--template ${name}=${maps}" }.join(' ')
    def distractor_args = distractors.collect { maps -> "--distractors ${maps}" }.join(' ')
    """
    templearn tetris ${template_args} ${distractor_args} ${args} -o ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: 'sample'
    """
    mkdir -p ${prefix}
    touch ${prefix}/molecules.star
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_TETRIS:
      templearn: stub
    END_VERSIONS
    """
}

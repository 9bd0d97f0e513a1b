process TEMPLEARN_LABELS {
    tag "${meta.id}"
    label 'process_low'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    // references: the maps that molecules.star names by path (staged for containers)
    tuple val(meta), path(molecules), path(tomogram), path(references, arity: '1..*', stageAs: 'references/?/*')

    output:
    tuple val(meta), path("${prefix}"), emit: labels
    tuple val(meta), path("${prefix}/labels.mrc"), emit: label_map
    tuple val(meta), path("${prefix}/targets.star"), emit: targets
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'labels'
    """
    templearn labels --like ${tomogram} ${args} -o ${prefix} ${molecules}
    """

    stub:
    prefix = task.ext.prefix ?: 'labels'
    """
    mkdir -p ${prefix}
    touch ${prefix}/labels.mrc ${prefix}/targets.star
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_LABELS:
      templearn: stub
    END_VERSIONS
    """
}

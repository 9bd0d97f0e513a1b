process TEMPLEARN_MATCH {
    tag "${meta.id}"
    label 'process_high'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    // tilt_meta: a simulation's meta.json (the tilt range), or [] for none
    tuple val(meta), path(tomogram), path(template, stageAs: 'template/*'), path(tilt_meta)

    output:
    tuple val(meta), path("${prefix}"), emit: match
    tuple val(meta), path("${prefix}/scores.mrc"), emit: scores
    tuple val(meta), path("${prefix}/picks.star"), emit: picks
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'match'
    def meta_arg = tilt_meta ? "--meta ${tilt_meta}" : ''
    """
    templearn match ${meta_arg} ${args} -o ${prefix} ${tomogram} ${template}
    """

    stub:
    prefix = task.ext.prefix ?: 'match'
    """
    mkdir -p ${prefix}
    touch ${prefix}/scores.mrc ${prefix}/angles.mrc ${prefix}/angles.tsv ${prefix}/picks.star
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_MATCH:
      templearn: stub
    END_VERSIONS
    """
}

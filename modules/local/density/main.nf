process TEMPLEARN_DENSITY {
    tag "${meta.id}"
    label 'process_medium'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    tuple val(meta), path(structures, arity: '1..*', stageAs: 'structures/*')

    output:
    tuple val(meta), path("${prefix}"), emit: maps
    tuple val(meta), path("${prefix}/*.mrc"), emit: mrc
    tuple val(meta), path("${prefix}/maps.star"), emit: index
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'maps'
    """
    templearn density ${args} -o ${prefix} ${structures}
    """

    stub:
    prefix = task.ext.prefix ?: 'maps'
    """
    mkdir -p ${prefix}
    touch ${prefix}/${meta.id}.mrc ${prefix}/maps.star
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_DENSITY:
      templearn: stub
    END_VERSIONS
    """
}

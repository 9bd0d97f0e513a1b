process TEMPLEARN_RANDOMIZE {
    tag "${meta.id}"
    label 'process_single'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    val meta

    output:
    tuple val(meta), path("${prefix}"), emit: acquisitions
    tuple val(meta), path("${prefix}/acquisitions.tsv"), emit: table
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    templearn randomize ${args} -o ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/acquisitions.tsv
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_RANDOMIZE:
      templearn: stub
    END_VERSIONS
    """
}

process TEMPLEARN_NMA {
    tag "${meta.id}"
    label 'process_medium'
    container "templearn-${task.ext.image ?: 'structure'}:${workflow.manifest.version}"

    input:
    tuple val(meta), path(structure)

    output:
    tuple val(meta), path("${prefix}"), emit: nma
    tuple val(meta), path("${prefix}/modes.npz"), emit: modes
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'nma'
    """
    templearn nma ${args} -o ${prefix} ${structure}
    """

    stub:
    prefix = task.ext.prefix ?: 'nma'
    """
    mkdir -p ${prefix}
    touch ${prefix}/modes.npz
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_NMA:
      templearn: stub
    END_VERSIONS
    """
}

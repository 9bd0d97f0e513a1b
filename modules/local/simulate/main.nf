process TEMPLEARN_SIMULATE {
    tag "${meta.id}"
    label 'process_high'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    // references: the maps (and, for Parakeet, the structures) that molecules.star names by
    // path; staged so that a container mounts them.
    tuple val(meta), path(molecules), path(acquisitions), path(references, arity: '1..*', stageAs: 'references/?/*')

    output:
    tuple val(meta), path("${prefix}"), emit: tilt
    tuple val(meta), path("${prefix}/tiltseries.mrc"), emit: tiltseries
    tuple val(meta), path("${prefix}/meta.json"), emit: tilt_meta
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'tilt'
    """
    templearn simulate --acquisitions ${acquisitions} ${args} -o ${prefix} ${molecules}
    """

    stub:
    prefix = task.ext.prefix ?: 'tilt'
    """
    mkdir -p ${prefix}
    touch ${prefix}/tiltseries.mrc ${prefix}/tiltseries.tlt ${prefix}/meta.json
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_SIMULATE:
      templearn: stub
    END_VERSIONS
    """
}

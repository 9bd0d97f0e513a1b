process TEMPLEARN_RECONSTRUCT {
    tag "${meta.id}"
    label 'process_medium'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    tuple val(meta), path(tilt)

    output:
    tuple val(meta), path("${prefix}"), emit: tomo
    tuple val(meta), path("${prefix}/tomogram.mrc"), emit: tomogram
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'tomo'
    """
    templearn reconstruct ${args} -o ${prefix} ${tilt}/tiltseries.mrc
    """

    stub:
    prefix = task.ext.prefix ?: 'tomo'
    """
    mkdir -p ${prefix}
    touch ${prefix}/tomogram.mrc
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_RECONSTRUCT:
      templearn: stub
    END_VERSIONS
    """
}

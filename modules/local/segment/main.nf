process TEMPLEARN_SEGMENT {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'
    container "templearn-${task.ext.image ?: 'unet'}:${workflow.manifest.version}"

    input:
    // The tomogram's half tomograms (none, or even and odd) are staged beside it.
    tuple val(meta), path(tomogram), path(halves, arity: '0..2'), path(model)

    output:
    tuple val(meta), path("${prefix}"), emit: segmentation
    tuple val(meta), path("${prefix}/labels.mrc"), emit: labels
    tuple val(meta), path("${prefix}/scores_*.mrc"), emit: scores
    tuple val(meta), path("${prefix}/classes.json"), emit: classes
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'segment'
    """
    templearn segment ${args} -o ${prefix} ${tomogram} ${model}
    """

    stub:
    prefix = task.ext.prefix ?: 'segment'
    """
    mkdir -p ${prefix}
    touch ${prefix}/labels.mrc ${prefix}/scores_stub.mrc ${prefix}/classes.json
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_SEGMENT:
      templearn: stub
    END_VERSIONS
    """
}

process TEMPLEARN_EVALUATE {
    tag "${meta.id}"
    label 'process_single'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    // mask: a file, or [] for none
    tuple val(meta), path(picks), path(targets, stageAs: 'truth/*'), path(mask)

    output:
    tuple val(meta), path("${prefix}"), emit: evaluation
    tuple val(meta), path("${prefix}/metrics.json"), emit: metrics
    tuple val(meta), path("${prefix}/pr_curve.png"), emit: pr_curve
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'evaluation'
    def mask_arg = mask ? "--mask ${mask}" : ''
    """
    templearn evaluate ${mask_arg} ${args} -o ${prefix} ${picks} ${targets}
    """

    stub:
    prefix = task.ext.prefix ?: 'evaluation'
    """
    mkdir -p ${prefix}
    touch ${prefix}/metrics.json ${prefix}/pr_curve.png
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_EVALUATE:
      templearn: stub
    END_VERSIONS
    """
}

process TEMPLEARN_PICK {
    tag "${meta.id}"
    label 'process_low'
    container "templearn-${task.ext.image ?: 'jax'}:${workflow.manifest.version}"

    input:
    // segmentation: the segment output directory; mask: a file, or [] for none;
    // tomogram and its even/odd halves (none: picks are not checked against them);
    // confirm: the tomogram's template search (templearn match folder), or [] for none
    tuple val(meta), path(segmentation), path(mask), path(tomogram), path(halves, arity: '0..2'), path(confirm)

    output:
    tuple val(meta), path("${prefix}"), emit: pick
    tuple val(meta), path("${prefix}/picks.star"), emit: picks
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'picks'
    def mask_arg = mask ? "--mask ${mask}" : ''
    def halves_arg = halves ? "--halves ${tomogram}" : ''
    def confirm_arg = confirm ? "--confirm ${confirm}" : ''
    """
    templearn pick --scores ${segmentation} ${mask_arg} ${halves_arg} ${confirm_arg} ${args} -o ${prefix} ${segmentation}/labels.mrc
    """

    stub:
    prefix = task.ext.prefix ?: 'picks'
    """
    mkdir -p ${prefix}
    touch ${prefix}/picks.star
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_PICK:
      templearn: stub
    END_VERSIONS
    """
}

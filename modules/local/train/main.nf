process TEMPLEARN_TRAIN {
    tag "${meta.id}"
    label 'process_high'
    label 'process_gpu'
    container "templearn-${task.ext.image ?: 'unet'}:${workflow.manifest.version}"

    input:
    // Tomogram directories (templearn reconstruct: tomogram.mrc, and with --halves its half
    // tomograms) and their labels directories, in the same order; validation ones may be none.
    tuple val(meta), path(tomograms, arity: '1..*', stageAs: 'sample?/*'), path(labels, arity: '1..*', stageAs: 'sample?/*'), path(val_tomograms, arity: '0..*', stageAs: 'validation?/*'), path(val_labels, arity: '0..*', stageAs: 'validation?/*')

    output:
    tuple val(meta), path("${prefix}"), emit: training
    tuple val(meta), path("${prefix}/model"), emit: model
    tuple val(meta), path("${prefix}/training_log.csv"), emit: log
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'training'
    def sample_args = [tomograms, labels].transpose().collect { tomo, dir -> "--sample ${tomo}/tomogram.mrc,${dir}" }.join(' ')
    def validation_args = [val_tomograms, val_labels].transpose().collect { tomo, dir -> "--validation ${tomo}/tomogram.mrc,${dir}" }.join(' ')
    """
    templearn train ${sample_args} ${validation_args} ${args} -o ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: 'training'
    """
    mkdir -p ${prefix}/model
    touch ${prefix}/model/model.json ${prefix}/training_log.csv
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_TRAIN:
      templearn: stub
    END_VERSIONS
    """
}

process TEMPLEARN_PSEUDOATOMS {
    tag "${meta.id}"
    label 'process_low'
    container "templearn-${task.ext.image ?: 'structure'}:${workflow.manifest.version}"

    input:
    tuple val(meta), path(density_map)

    output:
    tuple val(meta), path("${prefix}"), emit: pseudoatoms
    tuple val(meta), path("${prefix}/model.{pdb,cif}"), emit: models
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'pseudoatoms'
    """
    templearn pseudoatoms ${args} -o ${prefix} ${density_map}
    """

    stub:
    prefix = task.ext.prefix ?: 'pseudoatoms'
    """
    mkdir -p ${prefix}
    touch ${prefix}/model.pdb
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_PSEUDOATOMS:
      templearn: stub
    END_VERSIONS
    """
}

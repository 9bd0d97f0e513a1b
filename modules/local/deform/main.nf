process TEMPLEARN_DEFORM {
    tag "${meta.id}"
    label 'process_low'
    container "templearn-${task.ext.image ?: 'structure'}:${workflow.manifest.version}"

    input:
    tuple val(meta), path(structure), path(modes)

    output:
    tuple val(meta), path("${prefix}"), emit: conformers
    tuple val(meta), path("${prefix}/*.{pdb,cif}"), emit: models
    tuple val(meta), path("${prefix}/rmsd.csv"), emit: rmsd
    path "${prefix}/versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: 'conformers'
    """
    templearn deform ${args} -o ${prefix} ${structure} ${modes}
    """

    stub:
    prefix = task.ext.prefix ?: 'conformers'
    """
    mkdir -p ${prefix}
    touch ${prefix}/${meta.id}_conf000.pdb ${prefix}/rmsd.csv
    cat <<-END_VERSIONS > ${prefix}/versions.yml
    TEMPLEARN_DEFORM:
      templearn: stub
    END_VERSIONS
    """
}

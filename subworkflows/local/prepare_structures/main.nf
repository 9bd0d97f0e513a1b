/*
 * Templates to density maps: NMA → deform → density for flexible targets, pseudo-atoms →
 * density for targets known as a map, density of the model itself for rigid ones (and for
 * the training samples of the `flexible: false` ablation), and the distractors' maps.
 */

include { TEMPLEARN_NMA         } from '../../../modules/local/nma'
include { TEMPLEARN_DEFORM      } from '../../../modules/local/deform'
include { TEMPLEARN_PSEUDOATOMS } from '../../../modules/local/pseudoatoms'
include { TEMPLEARN_DENSITY     } from '../../../modules/local/density'
include { withArgs              } from '../utils_templearn'

workflow PREPARE_STRUCTURES {
    take:
    targets     // channel: [meta (targetPlan), model: an atomic model, or a density map]
    distractors // channel: [meta (id: distractors), [atomic models]]; empty without any
    records     // map: schemaRecords(nextflow_schema.json)

    main:
    source = targets.branch { meta, _model ->
        from_map: meta.from_map
        flexible: meta.flexible
        rigid: true
    }
    TEMPLEARN_PSEUDOATOMS(source.from_map.map { item -> withArgs(records, params, 'pseudoatoms', item) })
    TEMPLEARN_NMA(source.flexible.map { item -> withArgs(records, params, 'nma', item) })
    conformers_in = source.flexible
        .map { meta, model -> [meta.id, meta, model] }
        .join(TEMPLEARN_NMA.out.modes.map { meta, modes -> [meta.id, modes] })
        .map { _id, meta, model, modes -> withArgs(records, params, 'deform', [meta, model, modes]) }
    TEMPLEARN_DEFORM(conformers_in)

    models = TEMPLEARN_PSEUDOATOMS.out.models
        .mix(TEMPLEARN_DEFORM.out.models, source.rigid)
        .map { meta, files -> [meta, files instanceof List ? files : [files]] }
    rigid_training = source.flexible
        .filter { meta, _model -> meta.rigid_training }
        .map { meta, model -> [meta + [rigid: true], [model]] }
    density_in = models.mix(rigid_training, distractors)
    TEMPLEARN_DENSITY(density_in.map { item -> withArgs(records, params, 'density', item) })

    maps = TEMPLEARN_DENSITY.out.maps.branch { meta, _dir ->
        distractors: meta.distractors
        rigid: meta.rigid
        targets: true
    }
    references = TEMPLEARN_DENSITY.out.maps
        .map { _meta, dir -> dir }
        .mix(density_in.flatMap { _meta, files -> files })
        .collect(sort: true)

    emit:
    maps            = maps.targets                                            // channel: [meta, maps dir]
    training_maps   = maps.targets.filter { meta, _dir -> !meta.rigid_training }.mix(maps.rigid) // channel: [meta, maps dir]
    distractor_maps = maps.distractors                                        // channel: [meta, maps dir]
    references      = references                                              // value: maps dirs and the models they came from
    versions        = TEMPLEARN_PSEUDOATOMS.out.versions.mix(TEMPLEARN_NMA.out.versions, TEMPLEARN_DEFORM.out.versions, TEMPLEARN_DENSITY.out.versions)
}

/*
 * Templates to density maps: NMA → deform → density for flexible targets, pseudo-atoms →
 * density for targets known as a map, density of the model itself for rigid ones (and for
 * the training samples of the `flexible: false` ablation), and the distractors' maps.
 */

include { TEMPLEARN_NMA         } from '../../../modules/local/nma'
include { TEMPLEARN_DEFORM      } from '../../../modules/local/deform'
include { TEMPLEARN_PSEUDOATOMS } from '../../../modules/local/pseudoatoms'
include { TEMPLEARN_DENSITY     } from '../../../modules/local/density'
include { modelStem; withArgs  } from '../utils_templearn'

workflow PREPARE_STRUCTURES {
    take:
    targets     // channel: [meta (targetPlan), [atomic models] or [a density map]]
    distractors // channel: [meta (id: distractors), [atomic models]]; empty without any
    records     // map: schemaRecords(nextflow_schema.json)

    main:
    source = targets.branch { meta, _models ->
        from_map: meta.from_map
        flexible: meta.flexible
        rigid: true
    }
    TEMPLEARN_PSEUDOATOMS(source.from_map.map { meta, files -> withArgs(records, params, 'pseudoatoms', [meta, files[0]]) })
    // normal modes and conformers per model; a target of several models gets structures/<id>/<stem>/
    per_model = source.flexible.flatMap { meta, files ->
        files.collect { model ->
            [meta + [models: files.size(), stem: files.size() > 1 ? modelStem(model) : null], model]
        }
    }
    TEMPLEARN_NMA(per_model.map { item -> withArgs(records, params, 'nma', item) })
    conformers_in = per_model
        .map { meta, model -> [[meta.id, meta.stem], meta, model] }
        .join(TEMPLEARN_NMA.out.modes.map { meta, modes -> [[meta.id, meta.stem], modes] })
        .map { _key, meta, model, modes -> withArgs(records, params, 'deform', [meta, model, modes]) }
    TEMPLEARN_DEFORM(conformers_in)
    conformers = TEMPLEARN_DEFORM.out.models
        .map { meta, files -> [groupKey(meta.id, meta.models), meta, files instanceof List ? files : [files]] }
        .groupTuple()
        .map { _id, metas, files -> [metas[0].findAll { key, _value -> !(key in ['models', 'stem', 'args']) }, files.flatten().sort { path -> path.name }] }

    models = TEMPLEARN_PSEUDOATOMS.out.models
        .mix(conformers, source.rigid)
        .map { meta, files -> [meta, files instanceof List ? files : [files]] }
    rigid_training = source.flexible
        .filter { meta, _model -> meta.rigid_training }
        .map { meta, files -> [meta + [rigid: true], files] }
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

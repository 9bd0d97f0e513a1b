/*
 * Simulated tomograms with ground truth: tetris (a crowded sample) → simulate (a tilt series
 * under one acquisition) → reconstruct (the tomogram) → labels (label map and targets).
 */

include { TEMPLEARN_TETRIS      } from '../../../modules/local/tetris'
include { TEMPLEARN_SIMULATE    } from '../../../modules/local/simulate'
include { TEMPLEARN_RECONSTRUCT } from '../../../modules/local/reconstruct'
include { TEMPLEARN_LABELS      } from '../../../modules/local/labels'
include { withArgs              } from '../utils_templearn'

workflow MAKE_TOMOGRAMS {
    take:
    plan            // channel: one meta per tomogram (tomogramPlan)
    maps            // channel: [meta, maps dir] per target, for held-out tomograms
    training_maps   // channel: [meta, maps dir] per target, for training and validation
    distractor_maps // channel: [meta, maps dir]; empty without distractors
    tables          // channel: [meta (id: train or test), acquisitions.tsv]
    references      // value: files that molecules.star names by path
    records         // map: schemaRecords(nextflow_schema.json)

    main:
    distractors = distractor_maps.map { _meta, dir -> dir }.collect().ifEmpty([]).map { dirs -> [dirs] }
    kind = plan.branch { meta ->
        test: meta.kind == 'test'
        training: true
    }
    tetris_in = kind.test.combine(classes(maps))
        .mix(kind.training.combine(classes(training_maps)))
        .combine(distractors)
        .map { meta, names, dirs, distractor_dirs ->
            withArgs(records, params, 'tetris', [meta, names, dirs, meta.distractors ? distractor_dirs : []])
        }
    TEMPLEARN_TETRIS(tetris_in)
    molecules = TEMPLEARN_TETRIS.out.molecules

    simulate_in = molecules
        .map { meta, star -> [meta.table, meta, star] }
        .combine(tables.map { meta, table -> [meta.id, table] }, by: 0)
        .combine(references.map { files -> [files] })
        .map { _table_id, meta, star, table, files -> withArgs(records, params, 'simulate', [meta, star, table, files]) }
    TEMPLEARN_SIMULATE(simulate_in)
    TEMPLEARN_RECONSTRUCT(TEMPLEARN_SIMULATE.out.tilt.map { item -> withArgs(records, params, 'reconstruct', item) })

    labels_in = molecules
        .map { meta, star -> [meta.id, meta, star] }
        .join(TEMPLEARN_RECONSTRUCT.out.tomogram.map { meta, tomogram -> [meta.id, tomogram] })
        .combine(references.map { files -> [files] })
        .map { _id, meta, star, tomogram, files -> withArgs(records, params, 'labels', [meta, star, tomogram, files]) }
    TEMPLEARN_LABELS(labels_in)

    tomograms = TEMPLEARN_RECONSTRUCT.out.tomogram
        .map { meta, tomogram -> [meta.id, tomogram] }
        .join(TEMPLEARN_LABELS.out.labels.map { meta, dir -> [meta.id, meta, dir] })
        .join(TEMPLEARN_LABELS.out.targets.map { meta, targets -> [meta.id, targets] })
        .map { _id, tomogram, meta, dir, targets -> [meta, tomogram, dir, targets] }

    emit:
    tomograms = tomograms // channel: [meta, tomogram.mrc, labels dir, targets.star]
    tilt_meta = TEMPLEARN_SIMULATE.out.tilt_meta // channel: [meta, meta.json of the tilt series]
    versions  = TEMPLEARN_TETRIS.out.versions.mix(TEMPLEARN_SIMULATE.out.versions, TEMPLEARN_RECONSTRUCT.out.versions, TEMPLEARN_LABELS.out.versions)
}

// The targets' class names and maps directories, in the targets' order (class ids 1, 2, ...).
def classes(maps) {
    return maps
        .toSortedList { a, b -> a[0].order <=> b[0].order }
        .map { items -> [items.collect { item -> item[0].id }, items.collect { item -> item[1] }] }
}

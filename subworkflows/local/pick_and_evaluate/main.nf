/*
 * Picking with the trained model: segment → pick, then evaluate where the tomogram has
 * ground truth (held-out simulated tomograms, and the user's with targets). With template
 * searches of the tomograms (confirm_picks), pick keeps only the picks they confirm.
 */

include { TEMPLEARN_SEGMENT  } from '../../../modules/local/segment'
include { TEMPLEARN_PICK     } from '../../../modules/local/pick'
include { TEMPLEARN_EVALUATE } from '../../../modules/local/evaluate'
include { halvesOf; withArgs } from '../utils_templearn'

workflow PICK_AND_EVALUATE {
    take:
    tomograms // channel: [meta (id), tomogram, targets or [], mask or []]
    model     // channel: the trained model directory
    confirm   // channel: [id, template search folder] (empty: picks are not confirmed)
    records   // map: schemaRecords(nextflow_schema.json)

    main:
    TEMPLEARN_SEGMENT(
        tomograms
            .combine(model)
            .map { meta, tomogram, _targets, _mask, dir -> withArgs(records, params, 'segment', [meta, tomogram, halvesOf(tomogram), dir]) }
    )
    by_id = tomograms.map { meta, tomogram, targets, mask -> [meta.id, meta, tomogram, targets, mask] }
    // A run that reconstructs half tomograms checks the picks against them (pick --halves).
    TEMPLEARN_PICK(
        TEMPLEARN_SEGMENT.out.segmentation
            .map { meta, dir -> [meta.id, dir] }
            .join(by_id)
            .join(confirm, remainder: true)
            .map { _id, dir, meta, tomogram, _targets, mask, search -> withArgs(records, params, 'pick', [meta, dir, mask, tomogram, params.reconstruct.halves ? halvesOf(tomogram) : [], search ?: []]) }
    )
    TEMPLEARN_EVALUATE(
        TEMPLEARN_PICK.out.picks
            .map { meta, picks -> [meta.id, picks] }
            .join(by_id.filter { _id, _meta, _tomogram, targets, _mask -> targets })
            .map { _id, picks, meta, _tomogram, targets, mask -> withArgs(records, params, 'evaluate', [meta, picks, targets, mask]) }
    )

    emit:
    picks    = TEMPLEARN_PICK.out.picks        // channel: [meta, picks.star]
    metrics  = TEMPLEARN_EVALUATE.out.metrics  // channel: [meta, metrics.json]
    versions = TEMPLEARN_SEGMENT.out.versions.mix(TEMPLEARN_PICK.out.versions, TEMPLEARN_EVALUATE.out.versions)
}

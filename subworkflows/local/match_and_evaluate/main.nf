/*
 * Template matching, the baseline the trained picker is compared with: match (the first
 * target's map as the template) → evaluate, with `--sweep score`, where the tomogram has
 * ground truth. Runs when the params' `match` section sets any option, or with
 * confirm_picks (the trained picks are then confirmed by these searches).
 */

include { TEMPLEARN_MATCH    } from '../../../modules/local/match'
include { TEMPLEARN_EVALUATE } from '../../../modules/local/evaluate'
include { withArgs           } from '../utils_templearn'

workflow MATCH_AND_EVALUATE {
    take:
    tomograms // channel: [meta (id), tomogram, targets or [], mask or [], meta.json or []]
    template  // channel: the template map (one MRC)
    records   // map: schemaRecords(nextflow_schema.json)

    main:
    TEMPLEARN_MATCH(
        tomograms
            .combine(template)
            .map { meta, tomogram, _targets, _mask, tilt_meta, map -> withArgs(records, params, 'match', [meta, tomogram, map, tilt_meta]) }
    )
    by_id = tomograms.map { meta, _tomogram, targets, mask, _tilt_meta -> [meta.id, meta, targets, mask] }
    TEMPLEARN_EVALUATE(
        TEMPLEARN_MATCH.out.picks
            .map { meta, picks -> [meta.id, picks] }
            .join(by_id.filter { _id, _meta, targets, _mask -> targets })
            .map { _id, picks, meta, targets, mask -> withArgs(records, params, 'evaluate', [meta + [template_matching: true], picks, targets, mask]) }
    )

    emit:
    match    = TEMPLEARN_MATCH.out.match      // channel: [meta, the search's folder]
    picks    = TEMPLEARN_MATCH.out.picks      // channel: [meta, picks.star]
    metrics  = TEMPLEARN_EVALUATE.out.metrics // channel: [meta, metrics.json]
    versions = TEMPLEARN_MATCH.out.versions.mix(TEMPLEARN_EVALUATE.out.versions)
}

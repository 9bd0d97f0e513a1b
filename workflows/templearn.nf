/*
 * The experiment of a params file, as `templearn run` runs it (src/templearn/pipeline/
 * graph.py): the same tasks, each the same `templearn <stage>` command line, with outputs
 * published in the layout of a `templearn run` directory.
 */

include { TEMPLEARN_RANDOMIZE } from '../modules/local/randomize'
include { TEMPLEARN_TRAIN     } from '../modules/local/train'
include { PREPARE_STRUCTURES  } from '../subworkflows/local/prepare_structures'
include { MAKE_TOMOGRAMS      } from '../subworkflows/local/make_tomograms'
include { PICK_AND_EVALUATE   } from '../subworkflows/local/pick_and_evaluate'
include { MATCH_AND_EVALUATE  } from '../subworkflows/local/match_and_evaluate'
include { schemaRecords; targetPlan; taskArgs; tomogramPlan; withArgs } from '../subworkflows/local/utils_templearn'

workflow TEMPLEARN {
    take:
    user_tomograms // list: [meta (id), tomogram, targets or [], mask or []] (samplesheet rows)

    main:
    def records = schemaRecords(file("${projectDir}/nextflow_schema.json").text)
    def plan = tomogramPlan(records, params)
    def own = user_tomograms + params.tomograms.collect { t -> userTomogram(t) }
    def names = plan.findAll { meta -> meta.kind == 'test' }.collect { meta -> meta.id } + own.collect { item -> item[0].id }
    if (names.size() != names.toSet().size()) {
        error("tomograms: names must be unique and differ from the held-out test0, test1, ... (got ${names.join(', ')})")
    }

    target_models = channel.fromList(targetPlan(records, params)).map { meta -> [meta, targetModels(meta)] }
    def distractor_files = params.distractors.collectMany { spec -> modelFiles(spec, 'distractors') }
    distractors = distractor_files ? channel.of([[id: 'distractors', distractors: true], distractor_files]) : channel.empty()
    PREPARE_STRUCTURES(target_models, distractors, records)

    TEMPLEARN_RANDOMIZE(channel.of('train', 'test').map { kind -> [id: kind, args: taskArgs(records, params, 'randomize', [id: kind])] })

    MAKE_TOMOGRAMS(
        channel.fromList(plan),
        PREPARE_STRUCTURES.out.maps,
        PREPARE_STRUCTURES.out.training_maps,
        PREPARE_STRUCTURES.out.distractor_maps,
        TEMPLEARN_RANDOMIZE.out.table,
        PREPARE_STRUCTURES.out.references,
        records,
    )

    training_in = MAKE_TOMOGRAMS.out.tomograms
        .filter { meta, _tomogram, _labels, _targets -> meta.kind != 'test' }
        .toSortedList { a, b -> a[0].index <=> b[0].index }
        .map { items ->
            def train = items.findAll { item -> item[0].kind == 'train' }
            def validation = items.findAll { item -> item[0].kind == 'val' }
            // train takes each tomogram's folder: its half tomograms travel with it
            withArgs(records, params, 'train', [[id: 'training'], train.collect { item -> item[1].parent }, train.collect { item -> item[2] }, validation.collect { item -> item[1].parent }, validation.collect { item -> item[2] }])
        }
    TEMPLEARN_TRAIN(training_in)

    held_out = MAKE_TOMOGRAMS.out.tomograms
        .filter { meta, _tomogram, _labels, _targets -> meta.kind == 'test' }
        .map { meta, tomogram, _labels, targets -> [[id: meta.id], tomogram, targets, []] }

    versions = PREPARE_STRUCTURES.out.versions.mix(TEMPLEARN_RANDOMIZE.out.versions, MAKE_TOMOGRAMS.out.versions, TEMPLEARN_TRAIN.out.versions)
    confirm = channel.empty()
    if (params.match || params.confirm_picks) { // template matching with the first target's map: the baseline, and what confirms the picks
        template = PREPARE_STRUCTURES.out.training_maps
            .filter { meta, _dir -> meta.order == 0 }
            .map { _meta, dir -> files("${dir}/*.mrc").sort().first() }
        held_out_match = held_out
            .map { meta, tomogram, targets, mask -> [meta.id, meta, tomogram, targets, mask] }
            .join(MAKE_TOMOGRAMS.out.tilt_meta.map { meta, tilt_meta -> [meta.id, tilt_meta] })
            .map { _id, meta, tomogram, targets, mask, tilt_meta -> [meta, tomogram, targets, mask, tilt_meta] }
        MATCH_AND_EVALUATE(held_out_match.mix(channel.fromList(own).map { item -> item + [[]] }), template, records)
        versions = versions.mix(MATCH_AND_EVALUATE.out.versions)
        if (params.confirm_picks) {
            confirm = MATCH_AND_EVALUATE.out.match.map { meta, dir -> [meta.id, dir] }
        }
    }
    PICK_AND_EVALUATE(held_out.mix(channel.fromList(own)), TEMPLEARN_TRAIN.out.model.map { _meta, model -> model }, confirm, records)
    versions = versions.mix(PICK_AND_EVALUATE.out.versions)
    versions
        .map { yml -> yml.text }
        .unique()
        .collectFile(name: 'templearn_software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true)

    emit:
    picks    = PICK_AND_EVALUATE.out.picks   // channel: [meta, picks.star]
    metrics  = PICK_AND_EVALUATE.out.metrics // channel: [meta, metrics.json]
    versions = versions                      // channel: versions.yml of every task
}

// Model files named by a params-file spec: a file or glob, pdb:ID[,ID...] (from the RCSB) or
// bundled:NAME / bundled:distractors (shipped in src/templearn/data/structures).
def modelFiles(String spec, String where) {
    def bundled = "${projectDir}/src/templearn/data/structures"
    def name = spec.tokenize(':').last()
    def found = spec == 'bundled:distractors' ? files("${bundled}/distractors/*.cif.gz").sort()
        : spec.startsWith('bundled:') ? [file("${bundled}/${name}.cif.gz"), file("${bundled}/distractors/${name}.cif.gz")].findAll { path -> path.exists() }.take(1)
        : spec.startsWith('pdb:') ? name.tokenize(',').collect { code -> file("https://files.rcsb.org/download/${code.trim().toUpperCase()}.cif.gz") }
        : files(spec).sort()
    if (!found) {
        error("${where}: ${spec} names no files")
    }
    return found
}

// The files a target is made from: its density map, or its atomic model(s) (several
// models are one class, e.g. the six nucleosomes).
def targetModels(Map meta) {
    if (meta.from_map) {
        return [file(meta.model, checkIfExists: true)]
    }
    return modelFiles(meta.model, "targets.${meta.id}.structure")
}

// A `tomograms` item of the params file as a samplesheet row.
def userTomogram(Map t) {
    return [[id: t.name], file(t.tomogram, checkIfExists: true), optionalFile(t.targets), optionalFile(t.mask)]
}

def optionalFile(Object path) {
    return path ? file(path, checkIfExists: true) : []
}

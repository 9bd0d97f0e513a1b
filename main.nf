#!/usr/bin/env nextflow
/*
 * templearn: particle picking in cryo-ET tomograms learned from atomic templates.
 * `nextflow run main.nf -params-file params/demo.yaml -profile docker` runs the experiment
 * of a params file (the same file `templearn run` reads); see docs/nextflow.md.
 */

include { validateParameters; samplesheetToList } from 'plugin/nf-schema'
include { TEMPLEARN                             } from './workflows/templearn'

workflow {
    main:
    validateParameters()
    TEMPLEARN(params.input ? samplesheetToList(params.input, "${projectDir}/assets/schema_input.json") : [])
}

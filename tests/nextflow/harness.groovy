/*
 * Runs the pipeline's Groovy without the Nextflow engine, for tests/test_nextflow.py:
 *   config:  for each named list of config texts, their params (ConfigSlurper), later
 *            files replacing top-level keys as Nextflow's profiles do;
 *   plan:    for each experiment (a params map), the plan of tomograms and targets made by
 *            subworkflows/local/utils_templearn, and each task's options rendered into its
 *            module's script block as Nextflow renders it (staged path lists joined by
 *            blanks, common indentation stripped); `renders`: blocks without options.
 * Usage: groovy harness.groovy REQUEST.json  (writes the JSON answer to stdout)
 */
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import org.codehaus.groovy.runtime.GStringImpl

// The shape of Nextflow's BlankSeparatedList: a List whose text is its items joined by blanks.
class StagedList {
    @Delegate List target
    StagedList(List items) { target = items }
    String toString() { target.join(' ') }
    def getAt(int index) { target[index] }
}

def request = new JsonSlurper().parse(new File(args[0]))

def configParams(List texts, Map binding) {
    def params = [:]
    texts.each { text ->
        def slurper = new ConfigSlurper()
        slurper.setBinding(binding)
        params.putAll(slurper.parse(text).params)
    }
    return params
}

def render(String body, Map values) {
    def binding = new Binding(values.collectEntries { name, value ->
        [name, value instanceof List ? new StagedList(value) : value]
    })
    def result = new GroovyShell(binding).evaluate(body)
    if (result instanceof GString) {
        def shown = result.values.collect { value -> value instanceof StagedList ? value.toString() : value }
        result = new GStringImpl(shown as Object[], result.strings)
    }
    return [text: result.toString().stripIndent().trim(), prefix: binding.variables.prefix?.toString()]
}

def plan(Object utils, Map records, Map params, List tasks) {
    def tomograms = utils.tomogramPlan(records, params)
    def targets = utils.targetPlan(records, params)
    def metaOf = { Map meta ->
        meta.tomogram ? tomograms.find { t -> t.id == meta.tomogram }
            : meta.target ? targets.find { t -> t.id == meta.target } : meta
    }
    return [
        tomograms: tomograms,
        targets: targets,
        tasks: tasks.collect { task ->
            def meta = metaOf(task.meta)
            def args = utils.taskArgs(records, params, task.stage, meta)
            render(task.script, task.binding + [meta: meta, task: [ext: [args: args]]])
        },
    ]
}

def answer
if (request.mode == 'config') {
    answer = request.sets.collectEntries { name, texts -> [name, configParams(texts, request.binding)] }
}
else {
    def utils = new GroovyShell().parse(new File(request.utils))
    def records = utils.schemaRecords(new File(request.schema).text)
    answer = [
        experiments: request.experiments.collect { x -> plan(utils, records, x.params, x.tasks) },
        renders: request.renders.collect { block -> render(block.script, block.binding + [task: [ext: [:]]]) },
    ]
}
println JsonOutput.toJson(answer)

/*
 * The experiment as the workflow runs it: the tasks, seeds and `templearn <stage>` options
 * of `templearn run` (src/templearn/pipeline/graph.py), from the params and the records of
 * nextflow_schema.json. Plain functions, without channels or files, so that
 * tests/test_nextflow.py runs them against graph.py without the Nextflow engine.
 */

// Record name (a stage, or target, samples, training_samples, tomogram) → its properties:
// the schema objects marked with `record`.
def schemaRecords(String schemaText) {
    def found = [:]
    collectRecords(new groovy.json.JsonSlurper().parseText(schemaText), found)
    return found
}

def collectRecords(Object node, Map found) {
    if (node instanceof Map) {
        if (node['record']) {
            found[node['record']] = node['properties']
        }
        node.values().each { child -> collectRecords(child, found) }
    }
    else if (node instanceof List) {
        node.each { child -> collectRecords(child, found) }
    }
}

// A record's defaults overridden by `values` (a params-file section).
def withDefaults(Map records, String record, Map values) {
    def defaults = records[record].collectEntries { name, option -> [name, option['default']] }
    return defaults + (values ?: [:])
}

// `templearn <stage>` options for `values`: those that differ from the stage's defaults, in
// the order of its Params fields (as graph.command_line writes them), quoted for the shell.
def stageArgs(Map records, String stage, Map values) {
    return records[stage]
        .findAll { name, option -> values[name] != null && values[name] != option['default'] }
        .collectMany { name, option -> optionWords(option, values[name]) }
        .collect { word -> shellQuote(word.toString()) }
        .join(' ')
}

def optionWords(Map option, Object value) {
    def flag = option['cli_flag']
    if (value instanceof Boolean) {
        return value ? [flag] : [option['cli_negation']].findAll { word -> word }
    }
    if (option['cli_repeat']) {
        def items = value instanceof Map ? value.collect { key, item -> "${key}=${item}" }
            : value instanceof List ? value : value.toString().tokenize(',:')
        return items.collectMany { item -> [flag, item] }
    }
    return [flag, value instanceof List ? value.join(',') : value]
}

def shellQuote(String word) {
    return word ==~ /[A-Za-z0-9_.,:=\/+%@-]+/ ? word : "'" + word.replace("'", "'\\''") + "'"
}

// The options of one task: its stage's section with the values the runner sets itself.
def taskArgs(Map records, Map p, String stage, Map meta) {
    return stageArgs(records, stage, stageValues(p, stage, meta))
}

// The even/odd half tomograms beside a tomogram (`templearn reconstruct --halves`:
// templearn.halves.half_paths), those that exist: staged beside it for a model that measures
// the noise between them (train --normalise whiten-noise) and for pick --halves.
def halvesOf(Object tomogram) {
    def stem = tomogram.name.replaceAll(/\.mrc$/, '')
    return ['even', 'odd'].collect { half -> tomogram.resolveSibling("${stem}_${half}.mrc") }.findAll { path -> path.exists() }
}

// A structure file's name without its suffixes (templearn.structure.structure_stem).
def modelStem(Object path) {
    return path.name.replaceFirst(/(?i)\.(pdb|ent|cif|mmcif)(\.gz)?$/, '')
}

// A channel item [meta, ...] whose meta carries the task's options (conf/modules.config
// passes meta.args as task.ext.args).
def withArgs(Map records, Map p, String stage, List item) {
    return [item[0] + [args: taskArgs(records, p, stage, item[0])]] + item.drop(1)
}

def stageValues(Map p, String stage, Map meta) {
    if (stage in ['nma', 'deform', 'pseudoatoms']) {
        def section = p.targets[meta.id][stage] ?: [:]
        return stage == 'deform' ? [seed: p.seed] + section : section
    }
    if (stage == 'randomize') {
        def section = (p.acquisitions ?: [:])[meta.id] ?: [:]
        return [seed: p.seed * 10 + (meta.id == 'test' ? 1 : 0)] + section
    }
    if (stage == 'match') {
        def target = p.targets.keySet().first()
        return [radius: pickRadius(p, target)] + p.match + [name: target]
    }
    if (stage == 'evaluate') {
        return evaluationDistance(p) + (p.evaluate ?: [:]) + (meta.template_matching ? [sweep: 'score'] : [:])
    }
    def packing = meta.kind == 'test' ? [:] : ((p.training_samples ?: [:]).tetris ?: [:])
    def crowding = meta.crowding != null ? [max_protein_fraction: meta.crowding] : [:]
    def fixed = [
        density: [voxel_size: p.voxel_size],
        tetris: packing + crowding + [seed: meta.seed, name: meta.id],
        simulate: [seed: meta.seed, row: meta.row],
        labels: [name: meta.id],
        pick: [name: meta.id],
    ]
    return (p[stage] ?: [:]) + (fixed[stage] ?: [:])
}

// evaluate's match distance unless the params file sets one: the smallest `pick` radius of
// the targets, as GraphBuilder.evaluate_params takes it.
def evaluationDistance(Map p) {
    def radii = p.targets.keySet().collect { target -> pickRadius(p, target) }.findAll { radius -> radius != null }
    return radii ? [distance: radii.collect { radius -> radius as double }.min()] : [:]
}

// Template matching's radius: the `pick` section's radius of `target` (NAME=VOX, else VOX),
// as GraphBuilder.matching takes it; null when it names neither.
def pickRadius(Map p, String target) {
    def radius = (p.pick ?: [:]).radius ?: []
    def specs = radius instanceof List ? radius : radius.toString().tokenize(',:')
    def values = specs.collectEntries { spec ->
        def text = spec.toString()
        def at = text.lastIndexOf('=')
        [at < 0 ? '' : text.substring(0, at), text.substring(at + 1)]
    }
    return values[target] ?: values['']
}

// One entry per target, in params order (the class ids): how its maps are made.
def targetPlan(Map records, Map p) {
    def rigidTraining = !withDefaults(records, 'training_samples', p.training_samples).flexible
    return p.targets.collect { name, values -> withDefaults(records, 'target', values) + [id: name] }
        .withIndex()
        .collect { target, order ->
            def flexible = target.flexible && target.map == null
            [id: target.id, order: order, model: target.map ?: target.structure,
             from_map: target.map != null, flexible: flexible,
             rigid_training: flexible && rigidTraining]
        }
}

// One entry per simulated tomogram (train*, val*, test*): its seed, acquisition table and
// row, and whether distractors are packed (the ablations change training samples only).
def tomogramPlan(Map records, Map p) {
    def counts = withDefaults(records, 'samples', p.samples)
    def changes = withDefaults(records, 'training_samples', p.training_samples)
    def rows = [train: tableRows(records, p, 'train'), test: tableRows(records, p, 'test')]
    def kinds = [
        [kind: 'train', n: counts.train, first: 0, offset: 0, table: 'train'],
        [kind: 'val', n: counts.validation, first: counts.train, offset: 100, table: 'train'],
        [kind: 'test', n: counts.test, first: 0, offset: 200, table: 'test'],
    ]
    return kinds.collectMany { k ->
        (0..<k.n).collect { i ->
            def index = k.first + i
            [id: "${k.kind}${i}".toString(), kind: k.kind, index: index,
             seed: p.seed * 1000 + k.offset + index, table: k.table,
             row: (index % rows[k.table]).toString(),
             distractors: k.kind == 'test' || changes.distractors,
             crowding: k.kind == 'test' ? null : crowdingAt(changes.crowding, i, k.n)]
        }
    }
}

// training_samples.crowding [LOW, HIGH]: sample i of n gets the middle of its share, as
// TrainingSamples.crowding_at does (rounded to 3 decimals); null when not set.
def crowdingAt(range, int i, int n) {
    if (range == null) {
        return null
    }
    def (low, high) = range.collect { value -> value as double }
    return Math.round((low + (high - low) * (i + 0.5) / n) * 1000) / 1000.0
}

// Rows of an acquisition table: the paper grid's size, or the number of random draws.
def tableRows(Map records, Map p, String table) {
    def section = withDefaults(records, 'randomize', (p.acquisitions ?: [:])[table])
    return section.grid ? records['randomize']['grid']['table_rows'][section.grid] : section.n
}

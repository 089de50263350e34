// The shared vocabulary: head keys and labels, the metric registry, and the one interventions value
// (normal form, validation in engine terms, description lines, reading run files of both shapes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRIC_ORDER } from '../../src/engine/graph/inspectionGraph';
import { allHeads, formatMetricValue, headKey, headLabel, isMetricName, METRIC_INFO, METRICS, parseHeadKey } from '../../src/shared/heads';
import { describeInterventions, hasInterventions, interventionProblems, interventionsFromJson, maskedHeads, noInterventions, normalizeInterventions, scaleMap, scaleOf, withScale } from '../../src/shared/interventions';

test('head keys round-trip and reject anything else', () => {
  for (const h of [{ layer: 0, head: 0 }, { layer: 11, head: 7 }, { layer: 31, head: 31 }]) {
    assert.equal(headKey(h), `${h.layer}.${h.head}`);
    assert.deepEqual(parseHeadKey(headKey(h)), h);
  }
  for (const bad of ['', '1', '1.', '.1', '1.2.3', '-1.0', '1.-2', 'L1H2', ' 1.2', '1.2 ', '1e3.0', '1.0x']) assert.equal(parseHeadKey(bad), undefined, bad);
  assert.equal(headLabel({ layer: 2, head: 5 }), 'L2H5');
  assert.deepEqual(allHeads(2, 2), [{ layer: 0, head: 0 }, { layer: 0, head: 1 }, { layer: 1, head: 0 }, { layer: 1, head: 1 }]);
});

test('metric registry: graph order, own-property lookups, units', () => {
  assert.deepEqual(METRICS, ['entropy', 'sink', 'prevToken', 'selfAttn', 'induction', 'duplicateToken']);
  assert.deepEqual(METRICS, [...METRIC_ORDER], 'the registry lists the metrics in the graph\'s output order');
  for (const m of METRICS) {
    assert.ok(isMetricName(m));
    assert.ok(METRIC_INFO[m].label && METRIC_INFO[m].description && METRIC_INFO[m].cite, m);
  }
  for (const bad of ['toString', '__proto__', 'constructor', '', 'Entropy', 7, null]) assert.equal(isMetricName(bad), false, String(bad));
  assert.equal(formatMetricValue('sink', 0.8512), '85.1%');
  assert.equal(formatMetricValue('entropy', 2.3149), '2.31 nats');
  assert.equal(formatMetricValue('induction', null), 'n/a');
});

test('interventions: normal form, scale updates, masks', () => {
  let iv = noInterventions();
  assert.equal(hasInterventions(iv), false);
  iv = withScale(iv, [{ layer: 1, head: 0 }, { layer: 0, head: 3 }], 0);
  iv = withScale(iv, [{ layer: 0, head: 1 }], 2);
  assert.deepEqual(iv.scales, [{ layer: 0, head: 1, value: 2 }, { layer: 0, head: 3, value: 0 }, { layer: 1, head: 0, value: 0 }], 'sorted layer-major');
  assert.equal(scaleOf(iv, { layer: 0, head: 3 }), 0);
  assert.equal(scaleOf(iv, { layer: 5, head: 5 }), 1);
  assert.deepEqual(maskedHeads(iv), [{ layer: 0, head: 3 }, { layer: 1, head: 0 }]);
  assert.equal(scaleMap(iv).get('0.1'), 2);
  iv = withScale(iv, [{ layer: 0, head: 3 }, { layer: 1, head: 0 }, { layer: 0, head: 1 }], 1);
  assert.deepEqual(iv.scales, [], 'scale 1 removes a head');
  const dup = normalizeInterventions({ scales: [], emphasis: { start: 0, end: 3, alpha: 0.1, heads: [{ layer: 1, head: 1 }, { layer: 0, head: 2 }, { layer: 1, head: 1 }] }, sink: null });
  assert.deepEqual(dup.emphasis!.heads, [{ layer: 0, head: 2 }, { layer: 1, head: 1 }]);
});

test('interventions: problems in engine terms (no CLI flags), every kind checked', () => {
  assert.deepEqual(interventionProblems(noInterventions(), 2, 4), []);
  const p = interventionProblems(
    {
      scales: [{ layer: 7, head: 3, value: 0 }, { layer: 0, head: 0, value: Number.NaN }, { layer: 0, head: 1, value: -1 }],
      emphasis: { start: 5, end: 2, alpha: 0, heads: [{ layer: 0, head: 9 }] },
      sink: { heads: [], value: Infinity },
    },
    2,
    4,
    10,
  );
  assert.deepEqual(p, [
    'head scale: head 7.3 does not exist; this model has layers 0..1 and heads 0..3',
    'head scale: 0.0=NaN must be a finite number ≥ 0 (0 masks the head)',
    'head scale: 0.1=-1 must be a finite number ≥ 0 (0 masks the head)',
    'emphasis: alpha 0 must be a positive number (e.g. 0.01)',
    'emphasis: span 5:2 must be START:END with 0 ≤ START < END',
    'emphasis: head 0.9 does not exist; this model has layers 0..1 and heads 0..3',
    'sink calibration: scale Infinity must be a positive number',
    'sink calibration: no heads given',
  ]);
  assert.ok(p.every((m) => !m.includes('--')), 'no CLI flag names');
  assert.deepEqual(interventionProblems({ scales: [], emphasis: { start: 0, end: 11, alpha: 0.1, heads: 'all' }, sink: null }, 2, 4, 10), ['emphasis: span 0:11 is past the end of the prompt (10 characters)']);
});

test('interventions: one description line each', () => {
  const lines = describeInterventions(
    { scales: [{ layer: 0, head: 1, value: 0 }, { layer: 0, head: 2, value: 0 }, { layer: 1, head: 0, value: 2 }], emphasis: { start: 4, end: 7, alpha: 0.01, heads: [{ layer: 1, head: 1 }] }, sink: { heads: [{ layer: 0, head: 0 }], value: 0.5 } },
    'The cat sat',
  );
  assert.deepEqual(lines, ['mask L0H1, L0H2', 'scale L1H0 ×2', 'emphasize "cat" α=0.01 on L1H1', 'sink ×0.5 on L0H0']);
});

test('interventions from JSON: the current shape, the earlier run-file shape, and garbage', () => {
  const current = { scales: [{ layer: 0, head: 1, value: 0 }], emphasis: { start: 1, end: 2, alpha: 0.5, heads: 'all' }, sink: null };
  assert.deepEqual(interventionsFromJson(current), current);
  const legacy = { mask: [{ layer: 1, head: 0 }], scale: [{ head: { layer: 0, head: 2 }, value: 3 }], emphasize: { start: 0, end: 4, alpha: 0.01 }, steerHeads: [{ layer: 1, head: 1 }] };
  assert.deepEqual(interventionsFromJson(legacy), {
    scales: [{ layer: 0, head: 2, value: 3 }, { layer: 1, head: 0, value: 0 }],
    emphasis: { start: 0, end: 4, alpha: 0.01, heads: [{ layer: 1, head: 1 }] },
    sink: null,
  });
  assert.deepEqual(interventionsFromJson({}), noInterventions(), 'a run saved without interventions');
  for (const bad of [null, 3, 'x', [], { scales: 'no' }, { scales: [{ layer: -1, head: 0, value: 1 }] }, { mask: [{ layer: '1', head: 0 }] }, { scales: [], emphasis: { start: 0 } }, { scales: [], sink: { heads: [{ layer: 0, head: 0 }], value: 'x' } }]) {
    assert.equal(typeof interventionsFromJson(bad), 'string', JSON.stringify(bad));
  }
});

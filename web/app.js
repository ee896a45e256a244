// The page: sign in with the demo account, show the latest measurement and its diagnosis,
// and recommend a size for a shoe from the catalog. Everything but sign-in is gRPC-Web to
// ashi through the gateway.

import { GrpcError, Writer, decode, unary } from './grpc-web.js';
import { drawFeet } from './feet.js';

// ---- ashi.v1 messages the page reads (field numbers from proto/ashi/v1) -------------------

const Timestamp = { 1: ['seconds', 'int'] };
const FootDimensions = {
  1: ['lengthMm', 'double'],
  2: ['widthMm', 'double'],
  3: ['ballGirthMm', 'double'],
  4: ['instepHeightMm', 'double'],
  5: ['heelWidthMm', 'double'],
  6: ['archHeightMm', 'double'],
  7: ['ballOfFootLengthMm', 'double'],
  8: ['toeTipOffsetsMm', 'double', { repeated: true }],
  9: ['toe1AngleDeg', 'double'],
  10: ['toe5AngleDeg', 'double'],
};
const Measurement = {
  1: ['measurementId', 'string'],
  2: ['userId', 'string'],
  3: ['left', FootDimensions],
  4: ['right', FootDimensions],
  7: ['measuredAt', Timestamp],
};
const ListMeasurementsResponse = { 1: ['measurements', Measurement, { repeated: true }] };
const JisSize = {
  1: ['inTable', 'bool'],
  2: ['sizeMm', 'uint'],
  3: ['widthClass', 'string'],
  4: ['label', 'string'],
};
const FootDiagnosis = {
  1: ['jis', JisSize],
  2: ['toeShape', 'enum'],
  3: ['archType', 'enum'],
  6: ['halluxBand', 'enum'],
  7: ['halluxNote', 'string'],
};
const DiagnoseFootResponse = {
  1: ['left', FootDiagnosis],
  2: ['right', FootDiagnosis],
  3: ['lengthDifferenceMm', 'double'],
  6: ['notes', 'string', { repeated: true }],
};
const ShoeSize = {
  1: ['sizeMm', 'uint'],
  5: ['labelEu', 'string'],
  6: ['labelUk', 'string'],
  7: ['labelUs', 'string'],
};
const Shoe = {
  1: ['shoeId', 'string'],
  2: ['brand', 'string'],
  3: ['model', 'string'],
  4: ['category', 'enum'],
  5: ['gender', 'enum'],
};
const ListShoesResponse = { 1: ['shoes', Shoe, { repeated: true }] };
const DimensionFit = {
  1: ['fit', 'enum'],
  2: ['marginMm', 'double'],
  3: ['goodMinMm', 'double'],
  4: ['goodMaxMm', 'double'],
};
const SizeFit = {
  1: ['size', ShoeSize],
  2: ['length', DimensionFit],
  3: ['ballGirth', DimensionFit],
  4: ['width', DimensionFit],
};
const Recommendation = {
  1: ['shoeId', 'string'],
  2: ['foot', 'string'],
  3: ['best', SizeFit],
  4: ['confidence', 'double'],
  5: ['alternatives', SizeFit, { repeated: true }],
  6: ['reasons', 'string', { repeated: true }],
};

const TOE_SHAPES = ['—', 'Egyptian', 'Greek', 'square'];
const ARCH_TYPES = ['—', 'unknown', 'low', 'normal', 'high'];
const HALLUX_BANDS = ['—', 'normal', 'mild', 'moderate', 'marked'];
const FITS = ['—', 'tight', 'good', 'loose'];
const CATEGORIES = ['', 'running', 'walking', 'casual', 'dress', 'boot'];
const GENDERS = ['', 'men', 'women', 'unisex'];
const JIS_TABLE = { men: 1, women: 2 };

// ---- state and helpers --------------------------------------------------------------------

const state = { token: null, userId: null, measurement: null };
const $ = (id) => document.getElementById(id);

function show(id, visible) {
  $(id).hidden = !visible;
}

function fail(where, error) {
  const text = error instanceof GrpcError ? `${error.message} (gRPC status ${error.code})` : String(error.message || error);
  $('error').textContent = `${where}: ${text}`;
  show('error', true);
}

function measurementRef() {
  return new Writer().string(1, state.userId).string(2, state.measurement.measurementId);
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
}

// ---- the flow -----------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  show('error', false);
  const response = await fetch('/auth/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) return fail('Sign-in', new Error(answer.error || `HTTP ${response.status}`));
  state.token = answer.token;
  state.userId = answer.user_id;
  $('who').textContent = state.userId;
  show('sign-in', false);
  show('account', true);
  try {
    await Promise.all([loadMeasurement(), loadShoes()]);
  } catch (error) {
    fail('Loading', error);
  }
}

async function loadMeasurement() {
  const request = new Writer().string(1, state.userId).uint(2, 1).finish();
  const bytes = await unary('/ashi.v1.MeasurementService/ListMeasurements', request, state.token);
  const [latest] = decode(bytes, ListMeasurementsResponse).measurements;
  if (!latest) {
    $('measured-at').textContent = 'No measurement yet: scan your feet with the app.';
    return;
  }
  state.measurement = latest;
  const when = latest.measuredAt ? new Date(latest.measuredAt.seconds * 1000) : null;
  $('measured-at').textContent = when ? `Measured ${when.toLocaleString()}` : '';
  drawFeet($('feet'), latest);
  show('measurement', true);
  await diagnose();
}

async function diagnose() {
  const request = new Writer()
    .message(1, measurementRef())
    .uint(2, JIS_TABLE[$('table').value])
    .finish();
  const bytes = await unary('/ashi.v1.SizingService/DiagnoseFoot', request, state.token);
  const diagnosis = decode(bytes, DiagnoseFootResponse);
  const body = $('diagnosis-rows');
  body.replaceChildren();
  for (const side of ['left', 'right']) {
    const d = diagnosis[side];
    const row = document.createElement('tr');
    row.dataset.side = side;
    cell(row, side === 'left' ? 'Left' : 'Right');
    cell(row, d.jis?.label || '—', 'jis');
    cell(row, d.jis?.widthClass || '—');
    cell(row, TOE_SHAPES[d.toeShape] ?? '—');
    cell(row, ARCH_TYPES[d.archType] ?? '—');
    cell(row, HALLUX_BANDS[d.halluxBand] ?? '—');
    body.append(row);
  }
  $('diagnosis-notes').replaceChildren(
    ...diagnosis.notes.map((note) => Object.assign(document.createElement('li'), { textContent: note })),
  );
}

async function loadShoes() {
  const bytes = await unary('/ashi.v1.CatalogService/ListShoes', new Writer().uint(1, 100).finish(), state.token);
  const { shoes } = decode(bytes, ListShoesResponse);
  $('shoe').replaceChildren(
    ...shoes.map((shoe) => {
      const option = document.createElement('option');
      option.value = shoe.shoeId;
      const kind = [CATEGORIES[shoe.category], GENDERS[shoe.gender]].filter(Boolean).join(', ');
      option.textContent = `${shoe.brand} ${shoe.model}${kind ? ` (${kind})` : ''}`;
      return option;
    }),
  );
  show('shoes', true);
}

function sizeLabel(size) {
  const labels = [`${(size.sizeMm / 10).toFixed(1)} cm`];
  if (size.labelEu) labels.push(`EU ${size.labelEu}`);
  if (size.labelUk) labels.push(`UK ${size.labelUk}`);
  if (size.labelUs) labels.push(`US ${size.labelUs}`);
  return labels.join(' · ');
}

async function recommend(event) {
  event.preventDefault();
  show('error', false);
  if (!state.measurement) return fail('Recommendation', new Error('no measurement to size from'));
  try {
    const request = new Writer().message(1, measurementRef()).string(2, $('shoe').value).finish();
    const bytes = await unary('/ashi.v1.SizingService/RecommendSize', request, state.token);
    const rec = decode(bytes, Recommendation);
    if (!rec.best) throw new Error('no size of this shoe fits');
    $('best-size').textContent = sizeLabel(rec.best.size);
    $('best-size').dataset.sizeMm = rec.best.size.sizeMm;
    $('sized-from').textContent = `sized from your ${rec.foot} foot, confidence ${Math.round(rec.confidence * 100)}%`;
    const body = $('fit-rows');
    body.replaceChildren();
    for (const [name, fit] of [['Length', rec.best.length], ['Ball girth', rec.best.ballGirth], ['Width', rec.best.width]]) {
      if (!fit) continue;
      const row = document.createElement('tr');
      row.dataset.dimension = name;
      cell(row, name);
      cell(row, FITS[fit.fit] ?? '—', `fit fit-${FITS[fit.fit]}`);
      cell(row, `${fit.marginMm >= 0 ? '+' : ''}${fit.marginMm.toFixed(1)} mm`);
      cell(row, `${fit.goodMinMm.toFixed(0)} to ${fit.goodMaxMm.toFixed(0)} mm`);
      body.append(row);
    }
    $('reasons').replaceChildren(
      ...rec.reasons.map((reason) => Object.assign(document.createElement('li'), { textContent: reason })),
    );
    $('alternatives').textContent = rec.alternatives.length
      ? `Also possible: ${rec.alternatives.map((a) => sizeLabel(a.size)).join('; ')}`
      : '';
    show('recommendation', true);
  } catch (error) {
    show('recommendation', false);
    fail('Recommendation', error);
  }
}

$('sign-in').addEventListener('submit', signIn);
$('shoes').addEventListener('submit', recommend);
$('table').addEventListener('change', () => diagnose().catch((error) => fail('Diagnosis', error)));

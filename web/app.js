// The page: sign in with the demo account, show the latest measurement and its diagnosis,
// and the best size of every shoe in the catalog, the best fitting shoe first and shown.
// Everything but sign-in is gRPC-Web to ashi through the gateway.

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
  6: ['unitSystem', 'enum'],
  7: ['sizes', ShoeSize, { repeated: true }],
};
const ListShoesResponse = {
  1: ['shoes', Shoe, { repeated: true }],
  2: ['nextPageToken', 'string'],
};
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
  5: ['penalty', 'double'],
};
// The page words the fit itself from the numbers, so `confidence` and `reasons` go unread.
const Recommendation = {
  1: ['shoeId', 'string'],
  2: ['foot', 'string'],
  3: ['best', SizeFit],
  5: ['alternatives', SizeFit, { repeated: true }],
};
const RecommendSizesResponse = { 1: ['recommendations', Recommendation, { repeated: true }] };

const TOE_SHAPES = ['—', 'Egyptian', 'Greek', 'square'];
const ARCH_TYPES = ['—', 'not measured', 'low', 'normal', 'high'];
const HALLUX_BANDS = ['—', 'normal', 'mild', 'moderate', 'marked'];
const FIT = { tight: 1, good: 2, loose: 3 };
const FITS = ['—', 'tight', 'good', 'loose'];
const CATEGORIES = ['', 'running', 'walking', 'casual', 'dress', 'boot'];
const GENDERS = ['', "men's", "women's", 'unisex'];
const JIS_TABLE = { men: 1, women: 2 };
// UnitSystem: which of a size's labels the brand prints first.
const UNIT_LABELS = { 2: 'labelEu', 3: 'labelUk', 4: 'labelUs' };
// RecommendSizes takes at most this many shoes per call.
const SHOES_PER_CALL = 50;

// The dimensions of a size's fit, as the page names them, and what a miss means in words.
const DIMENSIONS = [
  { key: 'length', name: 'Length', tight: 'short', loose: 'long' },
  { key: 'ballGirth', name: 'Ball girth', tight: 'tight around the ball', loose: 'loose around the ball' },
  { key: 'width', name: 'Width', tight: 'narrow', loose: 'wide' },
];

// ---- state and helpers --------------------------------------------------------------------

// shoes: the catalog, in its order; recommendations: shoe id -> ashi's answer for the latest
// measurement.
const state = { token: null, userId: null, measurement: null, shoes: [], recommendations: new Map() };
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

function element(name, text, className) {
  const node = document.createElement(name);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) {
  row.append(element('td', text, className));
}

/** "a, b and c" */
function listing(words) {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/** A signed length in mm with a true minus sign: "+14.5 mm", "−4.5 mm", "0 mm". */
function signedMm(value, digits = 1) {
  const rounded = Math.abs(value).toFixed(digits);
  if (Number(rounded) === 0) return '0 mm';
  return `${value > 0 ? '+' : '−'}${rounded} mm`;
}

/** "+12 to +17 mm", breaking (when it must) only after "to". */
function rangeMm(fit) {
  const bound = (v) => signedMm(v, Number.isInteger(v) ? 0 : 1).replace(' mm', '');
  return `${bound(fit.goodMinMm)}\u00a0to ${bound(fit.goodMaxMm)}\u00a0mm`;
}

function cm(size) {
  return `${(size.sizeMm / 10).toFixed(1)}\u00a0cm`;
}

/** The brand's labels of a size (EU, UK, US), the system it labels in first. */
function brandLabels(size, shoe) {
  const labels = [['EU', 'labelEu'], ['UK', 'labelUk'], ['US', 'labelUs']];
  const first = UNIT_LABELS[shoe?.unitSystem];
  labels.sort(([, a], [, b]) => (b === first) - (a === first));
  return labels.filter(([, field]) => size[field]).map(([system, field]) => `${system}\u00a0${size[field]}`);
}

function shoeName(shoe) {
  const kind = [GENDERS[shoe.gender], CATEGORIES[shoe.category]].filter(Boolean).join(' ');
  return `${shoe.brand} ${shoe.model}${kind ? ` · ${kind}` : ''}`;
}

/** The measured dimensions of a size's fit, in the page's order. */
function dimensions(sizeFit) {
  return DIMENSIONS.filter((d) => sizeFit[d.key]).map((d) => ({ ...d, fit: sizeFit[d.key] }));
}

/**
 * How a shoe's best size fits: 'good' when every dimension is in its good range, 'roomy'
 * when the length is good and nothing is tight, 'none' otherwise: the shoe has no size that
 * fits (too short or too long, or tight somewhere).
 */
function verdict(rec) {
  if (!rec?.best) return 'none';
  const fits = dimensions(rec.best).map((d) => d.fit.fit);
  if (fits.every((f) => f === FIT.good)) return 'good';
  if (rec.best.length?.fit === FIT.good && !fits.includes(FIT.tight)) return 'roomy';
  return 'none';
}

/** How far the best size lies from the middle of the good ranges, each range counting one. */
function offCentre(rec) {
  return dimensions(rec.best).reduce((sum, { fit }) => {
    const half = (fit.goodMaxMm - fit.goodMinMm) / 2 || 1;
    return sum + Math.abs(fit.marginMm - (fit.goodMinMm + fit.goodMaxMm) / 2) / half;
  }, 0);
}

/**
 * The catalog, best fit first: shoes whose best size fits before those whose best size
 * only fits loosely before those with no size that fits; then by ashi's penalty; then by how
 * centred the fit is; then in catalog order.
 */
function rankShoes() {
  const order = { good: 0, roomy: 1, none: 2 };
  const key = (shoe, index) => {
    const rec = state.recommendations.get(shoe.shoeId);
    if (!rec?.best) return [3, 0, 0, index];
    return [order[verdict(rec)], rec.best.penalty, offCentre(rec), index];
  };
  const keyed = state.shoes.map((shoe, index) => ({ shoe, key: key(shoe, index) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return a.key[i] - b.key[i];
    return 0;
  });
  return keyed.map(({ shoe }) => shoe);
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
    return fail('Loading', error);
  }
  try {
    await sizeCatalog();
  } catch (error) {
    fail('Sizing', error);
  }
  fillShoePicker();
}

async function loadMeasurement() {
  const request = new Writer().string(1, state.userId).uint(2, 1).finish();
  const bytes = await unary('/ashi.v1.MeasurementService/ListMeasurements', request, state.token);
  const [latest] = decode(bytes, ListMeasurementsResponse).measurements;
  if (!latest) return;
  state.measurement = latest;
  const when = latest.measuredAt ? new Date(latest.measuredAt.seconds * 1000) : null;
  $('measured-at').textContent = when
    ? `Measured ${when.toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' })}`
    : '';
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
  const rows = [
    ['JIS size', (d) => d.jis?.label || '—', 'jis'],
    ['Toe shape', (d) => TOE_SHAPES[d.toeShape] ?? '—'],
    ['Arch', (d) => ARCH_TYPES[d.archType] ?? '—'],
    ['Big-toe angle', (d) => HALLUX_BANDS[d.halluxBand] ?? '—'],
  ];
  $('diagnosis-rows').replaceChildren(
    ...rows.map(([name, value, className]) => {
      const row = document.createElement('tr');
      row.append(element('th', name));
      row.lastChild.scope = 'row';
      for (const side of ['left', 'right']) {
        cell(row, value(diagnosis[side] ?? {}), className);
        row.lastChild.dataset.side = side;
      }
      return row;
    }),
  );
  // Both feet carry the same screening note; say it once.
  const halluxNotes = new Set(['left', 'right'].map((side) => diagnosis[side]?.halluxNote).filter(Boolean));
  $('diagnosis-notes').replaceChildren(
    ...[...diagnosis.notes, ...halluxNotes].map((note) => element('li', note)),
  );
}

async function loadShoes() {
  const shoes = [];
  let pageToken = '';
  do {
    const request = new Writer().uint(1, 100).string(2, pageToken).finish();
    const bytes = await unary('/ashi.v1.CatalogService/ListShoes', request, state.token);
    const page = decode(bytes, ListShoesResponse);
    shoes.push(...page.shoes);
    pageToken = page.nextPageToken;
  } while (pageToken);
  state.shoes = shoes;
}

/** Asks ashi for the best size of every shoe in the catalog for the latest measurement. */
async function sizeCatalog() {
  state.recommendations.clear();
  if (!state.measurement || state.shoes.length === 0) return;
  const batches = [];
  for (let i = 0; i < state.shoes.length; i += SHOES_PER_CALL) {
    const request = new Writer().message(1, measurementRef());
    for (const shoe of state.shoes.slice(i, i + SHOES_PER_CALL)) request.string(2, shoe.shoeId);
    batches.push(unary('/ashi.v1.SizingService/RecommendSizes', request.finish(), state.token));
  }
  for (const bytes of await Promise.all(batches)) {
    for (const rec of decode(bytes, RecommendSizesResponse).recommendations) {
      state.recommendations.set(rec.shoeId, rec);
    }
  }
}

/** Lists the shoes best fit first, grouped by whether a size fits, and shows the best one. */
function fillShoePicker() {
  const sized = state.recommendations.size > 0;
  const option = (shoe) =>
    Object.assign(document.createElement('option'), { value: shoe.shoeId, textContent: shoeName(shoe) });
  if (!sized) {
    $('shoe').replaceChildren(...state.shoes.map(option));
    $('shoe-order').textContent = !state.measurement
      ? 'No measurement yet: scan your feet with the app to see your size in each shoe.'
      : state.shoes.length === 0
        ? 'The catalog has no shoes yet.'
        : '';
  } else {
    const ranked = rankShoes();
    const fitting = ranked.filter((shoe) => verdict(state.recommendations.get(shoe.shoeId)) !== 'none');
    const others = ranked.filter((shoe) => !fitting.includes(shoe));
    const group = (label, shoes) => {
      const optgroup = Object.assign(document.createElement('optgroup'), { label });
      optgroup.append(...shoes.map(option));
      return optgroup;
    };
    $('shoe').replaceChildren(
      ...(fitting.length ? [group('A size fits you', fitting)] : []),
      ...(others.length ? [group('No size fits you well', others)] : []),
    );
    $('shoe').value = ranked[0].shoeId;
    $('shoe-order').textContent = fitting.length
      ? 'Shoes are listed best fit first.'
      : 'No shoe in the catalog has a size that fits your feet well.';
  }
  show('shoes', true);
  showRecommendation();
}

/** Shows the recommendation for the shoe picked. */
function showRecommendation() {
  const shoe = state.shoes.find((s) => s.shoeId === $('shoe').value);
  const rec = shoe && state.recommendations.get(shoe.shoeId);
  if (!rec?.best) {
    show('recommendation', false);
    return;
  }
  const best = rec.best;
  const fit = verdict(rec);
  $('recommendation').dataset.fit = fit;
  $('recommendation').dataset.shoe = shoe.shoeId;
  $('recommendation').dataset.sizeMm = best.size.sizeMm;
  const misses = (which) =>
    dimensions(best)
      .filter((d) => d.fit.fit !== FIT.good && (!which || d.fit.fit === which))
      .map((d) => d[FITS[d.fit.fit]]);
  const labels = brandLabels(best.size, shoe).join(' · ');
  const category = CATEGORIES[shoe.category];
  const verdictLine = $('verdict');
  if (fit === 'none') {
    verdictLine.replaceChildren('No size of this shoe fits your feet well.');
    // Say so when the shoe is not made long (or short) enough for the foot at all.
    const sizes = shoe.sizes.map((s) => s.sizeMm);
    const which =
      best.length.fit === FIT.tight && best.size.sizeMm === Math.max(...sizes)
        ? "This shoe's largest size"
        : best.length.fit === FIT.loose && best.size.sizeMm === Math.min(...sizes)
          ? "This shoe's smallest size"
          : 'The closest size';
    $('verdict-detail').textContent = `${which}, ${cm(best.size)}${labels ? ` (${labels})` : ''}, is ${listing(
      misses().map((m) => `too ${m}`),
    )}.`;
    $('fit-caption').textContent = `How the closest size, ${cm(best.size)}, fits`;
  } else {
    verdictLine.replaceChildren('Your size: ', element('strong', cm(best.size)), labels ? ` · ${labels}` : '');
    $('verdict-detail').textContent =
      fit === 'good'
        ? `Every dimension is within the good range${category ? ` for ${category} shoes` : ''}.`
        : `The length is right, but this size is ${listing(misses(FIT.loose))}.`;
    $('fit-caption').textContent = `How ${cm(best.size)} fits`;
  }
  $('sized-from').textContent = rec.foot ? `Sized for your ${rec.foot} foot, the larger of the two.` : '';

  $('fit-rows').replaceChildren(
    ...dimensions(best).map(({ name, fit: f }) => {
      const row = document.createElement('tr');
      row.dataset.dimension = name;
      row.append(element('th', name));
      row.lastChild.scope = 'row';
      cell(row, FITS[f.fit] ?? '—', `fit fit-${FITS[f.fit]}`);
      cell(row, signedMm(f.marginMm), 'number');
      cell(row, rangeMm(f), 'range');
      return row;
    }),
  );

  const alternatives = rec.alternatives.map((alt) => {
    const off = dimensions(alt).filter((d) => d.fit.fit !== FIT.good).map((d) => d[FITS[d.fit.fit]]);
    return `${cm(alt.size)} (${off.length ? listing(off) : 'also fits'})`;
  });
  // When no size fits, the next closest fit worse still: they would only add noise.
  $('alternatives').textContent =
    alternatives.length && fit !== 'none' ? `Next closest: ${alternatives.join('; ')}.` : '';
  show('recommendation', true);
}

$('sign-in').addEventListener('submit', signIn);
$('shoe').addEventListener('change', showRecommendation);
$('table').addEventListener('change', () => diagnose().catch((error) => fail('Diagnosis', error)));

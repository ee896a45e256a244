// Draws both feet from above, to scale (1 SVG unit = 1 mm), with length, width and ball
// girth marked. The outline is a smooth curve through points placed from the measurement:
// heel width near the heel, full width at the ball (ball-of-foot length from the heel), and
// each toe tip set back by its measured offset.

const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Points around a right foot seen from above, toes up, big toe on the left (x < 0). */
function outline(foot) {
  const L = foot.lengthMm;
  const W = foot.widthMm;
  const H = foot.heelWidthMm || 0.26 * L;
  const ball = L - (foot.ballOfFootLengthMm || 0.73 * L);
  const toes = foot.toeTipOffsetsMm.length === 5 ? foot.toeTipOffsetsMm : [0, 3, 9, 15, 24];
  // Toe tips from the big toe (medial) to the little toe (lateral).
  const tipX = [-0.3, -0.06, 0.1, 0.24, 0.37].map((f) => f * W);
  const tips = tipX.map((x, i) => [x, toes[i]]);
  return [
    [0, L],
    [-H / 2, L - 0.1 * L],
    [-0.42 * W, L - 0.45 * L],
    [-W / 2, ball],
    [-0.47 * W, toes[0] + 0.09 * L],
    ...tips,
    [0.47 * W, toes[4] + 0.06 * L],
    [W / 2, ball + 0.06 * L],
    [0.38 * W, L - 0.4 * L],
    [H / 2, L - 0.1 * L],
  ];
}

/** A closed Catmull-Rom spline through `points`, as cubic Bézier segments. */
function smoothPath(points) {
  const n = points.length;
  const at = (i) => points[(i + n) % n];
  let d = `M ${at(0)[0].toFixed(1)} ${at(0)[1].toFixed(1)}`;
  for (let i = 0; i < n; i++) {
    const [p0, p1, p2, p3] = [at(i - 1), at(i), at(i + 1), at(i + 2)];
    const c1 = [p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6];
    const c2 = [p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6];
    d += ` C ${c1[0].toFixed(1)} ${c1[1].toFixed(1)}, ${c2[0].toFixed(1)} ${c2[1].toFixed(1)}, ${p2[0].toFixed(1)} ${p2[1].toFixed(1)}`;
  }
  return `${d} Z`;
}

function drawFoot(svg, foot, side, originX) {
  const L = foot.lengthMm;
  const W = foot.widthMm;
  const ball = L - (foot.ballOfFootLengthMm || 0.73 * L);
  // The left foot is the right one mirrored: its big toe is on the right.
  const mirror = side === 'left' ? -1 : 1;
  const g = el('g', { transform: `translate(${originX} 20) scale(${mirror} 1)`, 'data-side': side });
  g.append(el('path', { d: smoothPath(outline(foot)), class: 'foot' }));
  g.append(el('line', { x1: -W / 2, y1: ball, x2: W / 2, y2: ball, class: 'mark' }));
  svg.append(g);

  // Labels are drawn unmirrored so they read left to right.
  const right = originX + W / 2 + 12;
  svg.append(el('line', { x1: right, y1: 20, x2: right, y2: 20 + L, class: 'dim' }));
  svg.append(el('text', { x: right + 4, y: 20 + L / 2, class: 'label', 'data-mark': 'length' }, `${L.toFixed(0)} mm`));
  svg.append(el('text', { x: originX, y: 20 + ball - 6, class: 'label middle', 'data-mark': 'width' }, `${W.toFixed(0)} mm`));
  svg.append(
    el('text', { x: originX, y: 20 + ball + 14, class: 'label middle small', 'data-mark': 'girth' }, `girth ${foot.ballGirthMm.toFixed(0)} mm`),
  );
  svg.append(el('text', { x: originX, y: 20 + L + 22, class: 'label middle side' }, side === 'left' ? 'Left' : 'Right'));
}

/** Replaces the content of `container` with a drawing of `measurement`'s two feet. */
export function drawFeet(container, measurement) {
  const { left, right } = measurement;
  const gap = 70;
  const width = left.widthMm + right.widthMm + gap + 110;
  const height = Math.max(left.lengthMm, right.lengthMm) + 60;
  const svg = el('svg', {
    viewBox: `0 0 ${width.toFixed(0)} ${height.toFixed(0)}`,
    role: 'img',
    'aria-label': `Left foot ${left.lengthMm} mm, right foot ${right.lengthMm} mm`,
  });
  const leftX = 20 + left.widthMm / 2;
  drawFoot(svg, left, 'left', leftX);
  drawFoot(svg, right, 'right', leftX + left.widthMm / 2 + gap + right.widthMm / 2);
  container.replaceChildren(svg);
}

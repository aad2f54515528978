// DOM building for the dashboard. Every value shown comes from the API, and report values are
// attacker-controlled: text only ever enters the page as text nodes (never innerHTML), attributes
// come from a fixed list, and links may only point inside the dashboard.
// @ts-check (tsconfig.web.json: `npm run typecheck` checks the dashboard with its JSDoc types)

/**
 * What h() and append() take as content: nodes as they are, other values as text; null, undefined
 * and false are skipped; arrays are flattened.
 * @typedef {Node | string | number | boolean | null | undefined | ChildList} Child
 * @typedef {Array<Child>} ChildList
 */
/** Attributes (from the lists below), properties, `class`, and `on<event>` listeners. @typedef {Record<string, unknown>} Props */

const ATTRIBUTES = new Set([
  'id',
  'type',
  'name',
  'for',
  'href',
  'title',
  'role',
  'placeholder',
  'min',
  'max',
  'step',
  'rows',
  'cols',
  'accept',
  'autocomplete',
  'colspan',
  'scope',
  'tabindex',
  'spellcheck',
]);
const PROPERTIES = new Set([
  'value',
  'checked',
  'selected',
  'disabled',
  'required',
  'multiple',
  'hidden',
  'open',
]);

/**
 * Appends children: nodes as they are, anything else as a text node; null/undefined/false skipped.
 * @template {ParentNode} P
 * @param {P} parent
 * @param {...Child} children
 * @returns {P}
 */
export function append(parent, ...children) {
  for (const child of /** @type {unknown[]} */ (children).flat(Number.POSITIVE_INFINITY)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/**
 * @param {HTMLElement} el
 * @param {Props | undefined} props
 */
function setProps(el, props) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null) continue;
    if (key === 'class') el.setAttribute('class', String(value));
    else if (key.startsWith('on') && typeof value === 'function')
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (PROPERTIES.has(key))
      /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (el))[key] = value;
    else if (key === 'href') {
      const href = String(value);
      if (!href.startsWith('#') && !href.startsWith('/'))
        throw new Error(`link outside the dashboard: ${href}`);
      el.setAttribute('href', href);
    } else if (ATTRIBUTES.has(key) || key.startsWith('aria-') || key.startsWith('data-')) {
      el.setAttribute(key, String(value));
    } else throw new Error(`attribute not allowed: ${key}`);
  }
}

/**
 * h('td', { class: 'num' }, 'text', node, ...)
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, ...children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_ATTRIBUTES = new Set([
  'viewBox',
  'width',
  'height',
  'x',
  'y',
  'x1',
  'x2',
  'y1',
  'y2',
  'rx',
  'class',
  'role',
  'text-anchor',
  'dominant-baseline',
  'transform',
  'preserveAspectRatio',
  'aria-label',
  'data-day',
  'data-testid',
]);

/**
 * An SVG element; children as for h().
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, attrs, ...children) {
  const el = /** @type {SVGElementTagNameMap[K]} */ (document.createElementNS(SVG_NS, tag));
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (!SVG_ATTRIBUTES.has(key)) throw new Error(`svg attribute not allowed: ${key}`);
    el.setAttribute(key, String(value));
  }
  return append(el, ...children);
}

/**
 * Replaces the children of `el`.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

/**
 * 12345 → "12,345".
 * @param {number} n
 */
export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}

/**
 * "2026-11-23T07:28:00.000Z" → "2026-11-23 07:28 UTC"; anything else as it is.
 * @param {string} iso
 */
export function formatTime(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(String(iso));
  return m ? `${m[1]} ${m[2]} UTC` : String(iso);
}

// Small SVG bar charts, drawn here rather than with a charting library to keep
// the page's script small (see the budget in test/browser/dashboard.test.ts).
// Each chart has a text alternative: an aria-label that reads out its values.
import { h, svg } from "./dom.js";

export interface Bar {
  label: string;
  value: number;
}

const WIDTH = 600;
const HEIGHT = 160;
const AXIS = 18;

/** One bar per item; `unit` words the values ("tokens", "s"). */
export function barChart(title: string, bars: Bar[], unit: string): HTMLElement {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const slot = WIDTH / Math.max(1, bars.length);
  const plot = HEIGHT - AXIS;
  const shapes = bars.flatMap((bar, i) => {
    const height = (bar.value / max) * (plot - 12);
    const x = i * slot + slot * 0.15;
    return [
      svg(
        "rect",
        { x, y: plot - height, width: slot * 0.7, height, class: "bar" },
        svg("title", {}, `${bar.label}: ${round(bar.value)} ${unit}`),
      ),
      svg("text", { x: x + slot * 0.35, y: HEIGHT - 4, class: "tick", "text-anchor": "middle" }, bar.label),
    ];
  });
  const summary = bars.map((b) => `${b.label}: ${round(b.value)} ${unit}`).join("; ");
  return figure(title, `${title}. ${summary || "nothing yet"}`, shapes);
}

export interface StackedColumn {
  label: string;
  parts: { key: string; value: number }[];
}

/** Columns of stacked parts, coloured by key (a status name: CSS classes `status-<key>`). */
export function stackedChart(title: string, columns: StackedColumn[], keys: string[]): HTMLElement {
  const max = Math.max(1, ...columns.map((c) => c.parts.reduce((sum, p) => sum + p.value, 0)));
  const slot = WIDTH / Math.max(1, columns.length);
  const plot = HEIGHT - AXIS;
  const shapes = columns.flatMap((column, i) => {
    let top = plot;
    const x = i * slot + slot * 0.15;
    const rects = column.parts
      .filter((p) => p.value > 0)
      .map((part) => {
        const height = (part.value / max) * (plot - 12);
        top -= height;
        return svg(
          "rect",
          { x, y: top, width: slot * 0.7, height, class: `bar part status-${part.key}` },
          svg("title", {}, `${column.label}: ${part.value} ${part.key}`),
        );
      });
    return [...rects, svg("text", { x: x + slot * 0.35, y: HEIGHT - 4, class: "tick", "text-anchor": "middle" }, column.label)];
  });
  const totals = keys
    .map((key) => [key, columns.reduce((sum, c) => sum + (c.parts.find((p) => p.key === key)?.value ?? 0), 0)] as const)
    .filter(([, n]) => n > 0);
  const legend = h(
    "ul",
    { class: "legend" },
    ...totals.map(([key, n]) => h("li", {}, h("span", { class: `swatch status-${key}` }), `${key} ${n}`)),
  );
  const chart = figure(title, `${title}. ${totals.map(([key, n]) => `${key}: ${n}`).join("; ") || "no tasks"}`, shapes);
  chart.append(legend);
  return chart;
}

function figure(title: string, label: string, shapes: SVGElement[]): HTMLElement {
  const drawing = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": label, class: "chart" }, ...shapes);
  return h("figure", { class: "chart-figure" }, h("figcaption", {}, title), drawing);
}

function round(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

// A calculator that parses arithmetic itself (no eval): numbers, + - * / % ^,
// unary minus and parentheses, with the usual precedence; ^ is right-associative.
import { z } from "zod";
import { defineTool } from "./tool.js";

export const calculator = defineTool({
  name: "calculator",
  description: 'Evaluates an arithmetic expression with + - * / % ^ and parentheses, e.g. "(2 + 3) * 4 ^ 2".',
  schema: z.object({ expression: z.string().min(1).max(1000) }).strict(),
  run({ expression }) {
    return String(evaluate(expression));
  },
});

export function evaluate(expression: string): number {
  const tokens = tokenize(expression);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = () => tokens[pos++];

  const primary = (): number => {
    const t = take();
    if (t === undefined) throw new Error("unexpected end of expression");
    if (t === "(") {
      const v = sum();
      if (take() !== ")") throw new Error('expected ")"');
      return v;
    }
    if (t === "-") return -power();
    if (t === "+") return power();
    const n = Number(t);
    if (!Number.isFinite(n)) throw new Error(`unexpected "${t}"`);
    return n;
  };
  const power = (): number => {
    const base = primary();
    if (peek() === "^") {
      take();
      return base ** power();
    }
    return base;
  };
  const product = (): number => {
    let v = power();
    for (let op = peek(); op === "*" || op === "/" || op === "%"; op = peek()) {
      take();
      const r = power();
      v = op === "*" ? v * r : op === "/" ? v / r : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    for (let op = peek(); op === "+" || op === "-"; op = peek()) {
      take();
      const r = product();
      v = op === "+" ? v + r : v - r;
    }
    return v;
  };

  const value = sum();
  if (pos !== tokens.length) throw new Error(`unexpected "${tokens[pos]}"`);
  if (!Number.isFinite(value)) throw new Error("result is not a finite number");
  return value;
}

function tokenize(expression: string): string[] {
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+|[-+*/%^()]|\S/gi) ?? [];
  const bad = tokens.find((t) => !/^(?:[\d.]|[-+*/%^()])/.test(t));
  if (bad) throw new Error(`unexpected "${bad}"`);
  return tokens;
}

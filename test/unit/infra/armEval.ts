/**
 * Partial evaluation of ARM template language expressions, for reading what `bicep snapshot`
 * leaves unevaluated. The snapshot (the Bicep CLI running Azure Resource Manager's own template
 * engine over the compiled JSON) resolves everything known before deployment; a property that
 * depends on a deployment-time value (`reference()`, `listKeys()`: an identity's principal id, a
 * storage endpoint) stays an expression string such as
 * `[union(createObject('A', 'x'), createObject('B', reference(...).outputs.id.value))]`.
 *
 * This evaluates such a string as far as it can: known functions over known values give values;
 * anything that needs a deployment gives an `Unknown` that keeps its expression text, so a test
 * can still see the object's keys (`A`, `B`) and what a value comes from (`...outputs.id.value`).
 * Grammar and functions follow the template functions reference (string literals in single quotes
 * with '' escapes, member access with `.` and `[...]`).
 */

/** A value known only at deployment; `text` is the expression it comes from. */
export class Unknown {
  constructor(readonly text: string) {}
  toString(): string {
    return `\${${this.text}}`;
  }
}

/** A string with deployment-time parts, shown as `${expression}`. */
export class Partial {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type ArmValue = unknown;

export interface EvalContext {
  parameters: Record<string, unknown>;
}

type Node =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'call'; name: string; args: Node[]; text: string }
  | { kind: 'member'; target: Node; name: string; text: string }
  | { kind: 'index'; target: Node; index: Node; text: string };

/** Whether a JSON string value is an expression (`[...]`, not the `[[` escape). */
export function isExpression(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('[') && value.endsWith(']') && !value.startsWith('[[');
}

/** Evaluates every expression string inside a JSON value (objects and arrays recursively). */
export function evaluateDeep(value: unknown, context: EvalContext): ArmValue {
  if (isExpression(value)) return evaluate(value, context);
  if (typeof value === 'string' && value.startsWith('[[')) return value.slice(1);
  if (Array.isArray(value)) return value.map((v) => evaluateDeep(v, context));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const key = isExpression(k) ? evaluate(k, context) : k;
      out[typeof key === 'string' ? key : String(key)] = evaluateDeep(v, context);
    }
    return out;
  }
  return value;
}

/** Evaluates one expression string (`[...]`). */
export function evaluate(expression: string, context: EvalContext): ArmValue {
  const source = expression.slice(1, -1).trim();
  const parser = new Parser(source);
  const node = parser.parseExpression();
  parser.expectEnd();
  return evalNode(node, context);
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  expectEnd(): void {
    this.skip();
    if (this.pos !== this.src.length)
      throw new Error(`unexpected "${this.src.slice(this.pos, this.pos + 20)}"`);
  }

  parseExpression(): Node {
    this.skip();
    const start = this.pos;
    let node = this.parsePrimary();
    for (;;) {
      this.skip();
      const c = this.src[this.pos];
      if (c === '.') {
        this.pos++;
        const name = this.identifier();
        node = { kind: 'member', target: node, name, text: this.src.slice(start, this.pos) };
      } else if (c === '[') {
        this.pos++;
        const index = this.parseExpression();
        this.skip();
        this.expect(']');
        node = { kind: 'index', target: node, index, text: this.src.slice(start, this.pos) };
      } else return node;
    }
  }

  private parsePrimary(): Node {
    this.skip();
    const start = this.pos;
    const c = this.src[this.pos];
    if (c === "'") return { kind: 'string', value: this.string() };
    if (c !== undefined && /[-0-9]/.test(c)) {
      const m = /^-?\d+(\.\d+)?/.exec(this.src.slice(this.pos));
      if (!m) throw new Error(`bad number at ${this.pos}`);
      this.pos += m[0].length;
      return { kind: 'number', value: Number(m[0]) };
    }
    // Function names may be namespaced (`__bicep.fn`, `sys.concat`).
    let name = this.identifier();
    while (this.src[this.pos] === '.' && /[A-Za-z_]/.test(this.src[this.pos + 1] ?? '')) {
      const save = this.pos;
      this.pos++;
      const part = this.identifier();
      this.skip();
      if (this.src[this.pos] === '(') {
        name = `${name}.${part}`;
        break;
      }
      this.pos = save;
      break;
    }
    this.skip();
    this.expect('(');
    const args: Node[] = [];
    this.skip();
    if (this.src[this.pos] !== ')') {
      for (;;) {
        args.push(this.parseExpression());
        this.skip();
        if (this.src[this.pos] === ',') {
          this.pos++;
          continue;
        }
        break;
      }
    }
    this.expect(')');
    return { kind: 'call', name, args, text: this.src.slice(start, this.pos) };
  }

  private identifier(): string {
    this.skip();
    const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(this.src.slice(this.pos));
    if (!m) throw new Error(`identifier expected at "${this.src.slice(this.pos, this.pos + 20)}"`);
    this.pos += m[0].length;
    return m[0];
  }

  private string(): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) throw new Error('unterminated string');
      if (c === "'") {
        if (this.src[this.pos + 1] === "'") {
          out += "'";
          this.pos += 2;
          continue;
        }
        this.pos++;
        return out;
      }
      out += c;
      this.pos++;
    }
  }

  private expect(c: string): void {
    if (this.src[this.pos] !== c) {
      throw new Error(`"${c}" expected at "${this.src.slice(this.pos, this.pos + 20)}"`);
    }
    this.pos++;
  }

  private skip(): void {
    while (this.src[this.pos] === ' ' || this.src[this.pos] === '\n' || this.src[this.pos] === '\t')
      this.pos++;
  }
}

const isUnknown = (v: unknown): v is Unknown | Partial => v instanceof Unknown || v instanceof Partial;

function evalNode(node: Node, context: EvalContext): ArmValue {
  switch (node.kind) {
    case 'string':
    case 'number':
      return node.value;
    case 'member': {
      const target = evalNode(node.target, context);
      if (isUnknown(target)) return new Unknown(node.text);
      if (target && typeof target === 'object' && node.name in target) {
        return (target as Record<string, unknown>)[node.name];
      }
      throw new Error(`no property ${node.name} in ${node.text}`);
    }
    case 'index': {
      const target = evalNode(node.target, context);
      const index = evalNode(node.index, context);
      if (isUnknown(target) || isUnknown(index)) return new Unknown(node.text);
      if (Array.isArray(target) && typeof index === 'number') return target[index];
      if (target && typeof target === 'object' && typeof index === 'string') {
        return (target as Record<string, unknown>)[index];
      }
      throw new Error(`cannot index ${node.text}`);
    }
    case 'call':
      return call(node, context);
  }
}

function call(node: Extract<Node, { kind: 'call' }>, context: EvalContext): ArmValue {
  const args = () => node.args.map((a) => evalNode(a, context));
  const unknown = () => new Unknown(node.text);
  switch (node.name.toLowerCase()) {
    case 'parameters': {
      const [name] = args();
      if (typeof name !== 'string' || !(name in context.parameters)) throw new Error(`unknown ${node.text}`);
      return context.parameters[name];
    }
    case 'true':
      return true;
    case 'false':
      return false;
    case 'null':
      return null;
    case 'createobject': {
      const values = args();
      const out: Record<string, unknown> = {};
      for (let i = 0; i < values.length; i += 2) {
        const key = values[i];
        if (typeof key !== 'string') return unknown();
        out[key] = values[i + 1];
      }
      return out;
    }
    case 'createarray':
      return args();
    case 'union': {
      const values = args();
      if (values.some(isUnknown)) return unknown();
      if (values.every(Array.isArray)) return [...new Set(values.flat())];
      return Object.assign({}, ...values);
    }
    case 'if': {
      const cond = evalNode(node.args[0]!, context);
      if (typeof cond !== 'boolean') return unknown();
      return evalNode(node.args[cond ? 1 : 2]!, context);
    }
    case 'not': {
      const [v] = args();
      return typeof v === 'boolean' ? !v : unknown();
    }
    case 'and':
    case 'or': {
      const values = args();
      if (!values.every((v) => typeof v === 'boolean')) return unknown();
      return node.name.toLowerCase() === 'and' ? values.every(Boolean) : values.some(Boolean);
    }
    case 'equals': {
      const [a, b] = args();
      if (isUnknown(a) || isUnknown(b)) return unknown();
      return JSON.stringify(a) === JSON.stringify(b);
    }
    case 'empty': {
      const [v] = args();
      if (isUnknown(v)) return unknown();
      if (v === null || v === undefined || v === '') return true;
      if (Array.isArray(v)) return v.length === 0;
      if (typeof v === 'object') return Object.keys(v).length === 0;
      return false;
    }
    case 'length': {
      const [v] = args();
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (v && typeof v === 'object' && !isUnknown(v)) return Object.keys(v).length;
      return unknown();
    }
    case 'string': {
      const [v] = args();
      if (isUnknown(v)) return unknown();
      if (typeof v === 'boolean') return v ? 'True' : 'False'; // ARM's string(true)
      return typeof v === 'string' ? v : JSON.stringify(v);
    }
    case 'format': {
      const [fmt, ...rest] = args();
      if (typeof fmt !== 'string') return unknown();
      return stringOf(
        fmt.split(/(\{\d+\})/).map((part) => {
          const m = /^\{(\d+)\}$/.exec(part);
          return m ? rest[Number(m[1])] : part;
        }),
      );
    }
    case 'concat': {
      const values = args();
      if (values.every(Array.isArray)) return values.flat();
      return stringOf(values);
    }
    case 'tolower': {
      const [v] = args();
      return typeof v === 'string' ? v.toLowerCase() : unknown();
    }
    case 'split': {
      const [v, sep] = args();
      return typeof v === 'string' && typeof sep === 'string' ? v.split(sep) : unknown();
    }
    case 'last': {
      const [v] = args();
      return Array.isArray(v) || typeof v === 'string' ? v[v.length - 1] : unknown();
    }
    case 'extensionresourceid': {
      // extensionResourceId(scope, type, name...): `{scope}/providers/{type}/{name}` (one segment
      // per name); a deployment-time name (a guid over a principal id) keeps the scope readable.
      const [scope, type, ...names] = args();
      if (typeof scope !== 'string' || typeof type !== 'string') return unknown();
      const [namespace, ...types] = type.split('/');
      const segments = types.flatMap((t, i) => [t, names[i]]);
      return stringOf([
        `${scope}/providers/${namespace}/`,
        ...segments.flatMap((s, i) => (i === 0 ? [s] : ['/', s])),
      ]);
    }
    case 'contains': {
      const [c, item] = args();
      if (isUnknown(c) || isUnknown(item)) return unknown();
      if (typeof c === 'string') return c.includes(String(item));
      if (Array.isArray(c)) return c.some((x) => JSON.stringify(x) === JSON.stringify(item));
      if (c && typeof c === 'object') return String(item) in c;
      return unknown();
    }
    default:
      // reference(), listKeys(), guid(), uniqueString(), deployment(), lambdas...: deployment time.
      return unknown();
  }
}

function stringOf(parts: unknown[]): string | Partial {
  if (!parts.some(isUnknown))
    return parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('');
  return new Partial(parts.map((p) => (typeof p === 'string' ? p : String(p))).join(''));
}

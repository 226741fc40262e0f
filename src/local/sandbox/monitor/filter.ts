/**
 * The dimension filter of Azure Monitor metrics queries (`filter=EntityName eq 'orders' and StatusCode eq '*'`),
 * as the metrics:getBatch REST spec describes it: `eq` clauses joined by `and` / `or`, where `or` may only
 * join clauses on the same dimension (`A eq 'a1' and B eq 'b1' or B eq 'b2'` reads A = a1 and B in (b1, b2));
 * `'*'` asks for every value of a dimension, each as its own series. Single quotes inside a value are
 * doubled (`'O''Brien'`), as in OData.
 */

export interface DimensionCondition {
  /** The dimension as written in the filter. */
  name: string;
  /** `*`: every value (split by it); otherwise the accepted values (case-insensitive). */
  values: '*' | string[];
}

export type ParsedFilter = { ok: true; conditions: DimensionCondition[] } | { ok: false; error: string };

const MAX_FILTER_LENGTH = 4096;
const MAX_CLAUSES = 200;

type Token = { kind: 'word'; text: string } | { kind: 'string'; text: string };

function tokenize(filter: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const c = filter[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= filter.length) return 'a quoted value is not closed';
        if (filter[i] === "'") {
          if (filter[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += filter[i];
        i++;
      }
      tokens.push({ kind: 'string', text: value });
      continue;
    }
    let word = '';
    while (i < filter.length && !/\s/.test(filter[i]!) && filter[i] !== "'") {
      word += filter[i];
      i++;
    }
    tokens.push({ kind: 'word', text: word });
  }
  return tokens;
}

/** Parses a metrics filter; the error says what is wrong, in the service's terms. */
export function parseMetricsFilter(filter: string): ParsedFilter {
  if (filter.length > MAX_FILTER_LENGTH)
    return { ok: false, error: `The filter is longer than ${MAX_FILTER_LENGTH} characters.` };
  const tokens = tokenize(filter);
  if (typeof tokens === 'string') return { ok: false, error: `Invalid filter: ${tokens}.` };
  const clauses: Array<{ name: string; value: string }> = [];
  const joins: Array<'and' | 'or'> = [];
  let i = 0;
  while (i < tokens.length) {
    const name = tokens[i];
    const op = tokens[i + 1];
    const value = tokens[i + 2];
    if (
      name?.kind !== 'word' ||
      op?.kind !== 'word' ||
      op.text.toLowerCase() !== 'eq' ||
      value?.kind !== 'string'
    ) {
      return {
        ok: false,
        error: `Invalid filter '${filter}': expected <dimension> eq '<value>' clauses joined by and / or.`,
      };
    }
    clauses.push({ name: name.text, value: value.text });
    if (clauses.length > MAX_CLAUSES)
      return { ok: false, error: `The filter has more than ${MAX_CLAUSES} clauses.` };
    i += 3;
    if (i === tokens.length) break;
    const join = tokens[i];
    const word = join?.kind === 'word' ? join.text.toLowerCase() : '';
    if (word !== 'and' && word !== 'or')
      return { ok: false, error: `Invalid filter '${filter}': expected and / or.` };
    joins.push(word);
    i++;
    if (i === tokens.length) return { ok: false, error: `Invalid filter '${filter}': it ends with ${word}.` };
  }
  if (clauses.length === 0) return { ok: false, error: 'The filter is empty.' };
  for (const [k, join] of joins.entries()) {
    if (join === 'or' && clauses[k]!.name.toLowerCase() !== clauses[k + 1]!.name.toLowerCase()) {
      return {
        ok: false,
        error: `Invalid filter '${filter}': the logical or operator cannot separate two different metadata names (${clauses[k]!.name}, ${clauses[k + 1]!.name}).`,
      };
    }
  }
  const conditions: DimensionCondition[] = [];
  for (const clause of clauses) {
    const existing = conditions.find((c) => c.name.toLowerCase() === clause.name.toLowerCase());
    if (!existing) {
      conditions.push({ name: clause.name, values: clause.value === '*' ? '*' : [clause.value] });
    } else if (existing.values !== '*') {
      if (clause.value === '*') existing.values = '*';
      else existing.values.push(clause.value);
    }
  }
  return { ok: true, conditions };
}

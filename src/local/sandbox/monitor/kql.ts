/**
 * Just enough KQL for the sandbox to recognise a query (it does not run KQL): a lexical walk that tells
 * string literals and comments apart, finds the `// stampkeeper:query=<tag>` tag, checks the brackets
 * and quotes balance, and gives a normalised text that ignores comments and whitespace between tokens.
 */

export const TAG_PREFIX = 'stampkeeper:query=';
const TAG = /stampkeeper:query=([A-Za-z0-9][A-Za-z0-9_.-]{0,127})/;
/** Characters next to which whitespace carries no meaning in KQL. */
const PUNCTUATION = new Set([...'|,;()[]{}=<>!+-*/%:.']);
const CLOSERS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

export interface KqlScan {
  /** Comments and whitespace dropped; whitespace runs between words become one space; none next to punctuation. */
  normalised: string;
  /** The first `stampkeeper:query=<tag>` found in a comment. */
  tag: string | undefined;
  /** What makes the text unparseable (unbalanced brackets, an unclosed string, nothing but comments...). */
  syntaxError: string | undefined;
}

/** Scans a KQL text (see the module comment). Linear in the text's length. */
export function scanKql(text: string): KqlScan {
  let out = '';
  let pendingSpace = false;
  let tag: string | undefined;
  let syntaxError: string | undefined;
  const stack: Array<{ c: string; at: number }> = [];
  const emit = (s: string) => {
    if (pendingSpace && out !== '' && !PUNCTUATION.has(out.at(-1)!) && !PUNCTUATION.has(s[0]!)) out += ' ';
    pendingSpace = false;
    out += s;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      const comment = text.slice(i + 2, end === -1 ? text.length : end);
      tag ??= TAG.exec(comment)?.[1];
      i = end === -1 ? text.length : end;
      pendingSpace = true;
      continue;
    }
    if (/\s/.test(c)) {
      pendingSpace = true;
      i++;
      continue;
    }
    const verbatim = (c === '@' || c === 'h' || c === 'H') && (text[i + 1] === "'" || text[i + 1] === '"');
    if (c === "'" || c === '"' || verbatim) {
      const start = i;
      const quote = verbatim ? text[i + 1]! : c;
      i += verbatim ? 2 : 1;
      let closed = false;
      while (i < text.length) {
        const d = text[i]!;
        if (!verbatim && d === '\\') {
          i += 2;
          continue;
        }
        if (d === '\n' && !verbatim) break;
        if (d === quote) {
          if (verbatim && text[i + 1] === quote) {
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        i++;
      }
      if (!closed) {
        syntaxError ??= `a string literal opened at character ${start + 1} is not closed`;
        i = text.length;
      }
      emit(text.slice(start, i));
      continue;
    }
    if (c === '(' || c === '[' || c === '{') stack.push({ c, at: i });
    if (c in CLOSERS) {
      const open = stack.pop();
      if (open?.c !== CLOSERS[c]) syntaxError ??= `'${c}' at character ${i + 1} closes nothing open`;
    }
    if (PUNCTUATION.has(c)) {
      emit(c);
      i++;
      continue;
    }
    let word = '';
    while (
      i < text.length &&
      !/\s/.test(text[i]!) &&
      !PUNCTUATION.has(text[i]!) &&
      text[i] !== "'" &&
      text[i] !== '"'
    ) {
      if (text[i] === '/' && text[i + 1] === '/') break;
      word += text[i];
      i++;
    }
    if (word === '') {
      // A lone '@' or 'h' before something that is not a quote: part of a word after all.
      word = c;
      i++;
    }
    emit(word);
  }
  if (stack.length > 0)
    syntaxError ??= `'${stack.at(-1)!.c}' at character ${stack.at(-1)!.at + 1} is not closed`;
  if (out === '') syntaxError ??= 'the query is empty (nothing but whitespace and comments)';
  else if (out.startsWith('|'))
    syntaxError ??= "the query starts with '|' (a tabular expression must come first)";
  else if (out.endsWith('|')) syntaxError ??= "the query ends with '|' (an operator must follow)";
  return { normalised: out, tag, syntaxError };
}

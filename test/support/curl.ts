/**
 * Runs the `curl` command lines of a document (the README's walk-through) with `fetch`, so that a
 * test can check them exactly as written. Only what the lines use is understood; anything else
 * (another flag, shell syntax such as pipes, variables or `&&`) is refused, so a command the test
 * cannot run as written fails the test rather than being skipped.
 */

/** The `sh` / `bash` fenced code blocks of a Markdown text, each as its lines. */
export function shellBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  for (const match of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    blocks.push((match[1] as string).split('\n'));
  }
  return blocks;
}

/** Splits a command line as a POSIX shell would (quotes, `#` comments); refuses other shell syntax. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unbalanced ' in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '$' || line[j] === '`') throw new Error(`shell expansion is not supported: ${line}`);
        if (line[j] === '\\' && j + 1 < line.length) j++;
        text += line[j];
      }
      if (j >= line.length) throw new Error(`unbalanced " in: ${line}`);
      word = (word ?? '') + text;
      i = j;
    } else if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else if ('|&;<>$`\\(){}*?'.includes(c)) {
      throw new Error(`shell syntax "${c}" is not supported: ${line}`);
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

export interface CurlRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** The request a `curl` command line makes (the subset: `-s`, `-X`, `-d`, `-H`). */
export function parseCurl(line: string): CurlRequest {
  const words = shellWords(line);
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${line}`);
  let method: string | undefined;
  let url: string | undefined;
  let body: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < words.length; i++) {
    const word = words[i] as string;
    const next = () => {
      const value = words[++i];
      if (value === undefined) throw new Error(`${word} needs a value: ${line}`);
      return value;
    };
    if (word === '-s' || word === '--silent' || word === '-sS') continue;
    if (word === '-X' || word === '--request') method = next();
    else if (word.startsWith('-X')) method = word.slice(2);
    else if (word === '-d' || word === '--data') body = next();
    else if (word === '-H' || word === '--header') {
      const [name, ...value] = next().split(':');
      headers[(name as string).trim().toLowerCase()] = value.join(':').trim();
    } else if (word.startsWith('-')) throw new Error(`curl option ${word} is not supported: ${line}`);
    else if (url === undefined) url = word;
    else throw new Error(`more than one URL: ${line}`);
  }
  if (!url) throw new Error(`no URL: ${line}`);
  // As curl: no scheme means http; -d means POST with a form content type unless one is given.
  if (body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    url: /^https?:\/\//.test(url) ? url : `http://${url}`,
    headers,
    body,
  };
}

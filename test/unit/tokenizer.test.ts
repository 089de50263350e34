import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer, type PromptToken, type PromptTokenizer } from '../../src/engine/sources/tokenizer';
import { EngineError } from '../../src/engine/errors';
import { tinyTokenizerJson, writeTinyTokenizer } from '../fixtures/tinyTokenizer';

let root: string;
let bosTok: PromptTokenizer;
let gptTok: PromptTokenizer;
let bosVocab: number;
let gptVocab: number;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-tok-'));
  bosVocab = writeTinyTokenizer(path.join(root, 'bos'), { bos: true }).vocabSize;
  gptVocab = writeTinyTokenizer(path.join(root, 'gpt'), { bos: false }).vocabSize;
  bosTok = await loadTokenizer(path.join(root, 'bos'));
  gptTok = await loadTokenizer(path.join(root, 'gpt'));
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
/** i is a code point boundary of s (not between the halves of a surrogate pair). */
function onBoundary(s: string, i: number): boolean {
  if (i <= 0 || i >= s.length) return true;
  return !(isHigh(s.charCodeAt(i - 1)) && isLow(s.charCodeAt(i)));
}

function checkInvariants(prompt: string, toks: PromptToken[]): void {
  let covered = 0;
  let joined = '';
  for (const t of toks) {
    assert.ok(Number.isInteger(t.start) && Number.isInteger(t.end), 'integer offsets');
    assert.ok(0 <= t.start && t.start <= t.end && t.end <= prompt.length, `[${t.start},${t.end}) within prompt of length ${prompt.length}`);
    assert.ok(onBoundary(prompt, t.start) && onBoundary(prompt, t.end), `[${t.start},${t.end}) on code point boundaries`);
    if (t.special) continue;
    // Byte-level BPE without a normalizer: every token covers at least one character, and tokens
    // follow each other without gaps (sharing a character is allowed).
    assert.ok(t.end > t.start, `token ${t.id} covers something`);
    assert.ok(t.start <= covered, `no gap before token ${t.id} at ${t.start} (covered ${covered})`);
    assert.equal(t.text, prompt.slice(Math.max(t.start, covered), t.end));
    covered = Math.max(covered, t.end);
    joined += t.text;
  }
  assert.equal(covered, prompt.length, 'tokens reach the end of the prompt');
  assert.equal(joined, prompt, 'token texts concatenate to the prompt');
}

const PROMPTS: Record<string, string> = {
  english: 'The cat sat on the mat and the dog sat on the log.',
  accentsNFC: 'Le café est très réputé à Noël'.normalize('NFC'),
  accentsNFD: 'Le café est très réputé à Noël'.normalize('NFD'),
  cjk: '日本語のテキストと中文，한국어',
  emoji: 'I like 😀 and 🐈!',
  zwj: 'family: 👨‍👩‍👧‍👦 and 🏳️‍🌈 done',
  flags: 'flags 🇯🇵🇫🇷🇺🇸',
  skinTone: 'ok 👍🏽👋🏿',
  astralMath: 'x𝒳y 𝟘',
  whitespace: 'line one\nline\ttwo\r\n\n  indented\t\tend \n',
  mixed: 'naïve Ωmega — “quotes” 😀日本\t✓',
};

for (const [name, prompt] of Object.entries(PROMPTS)) {
  test(`offsets: ${name}`, async () => {
    for (const tok of [bosTok, gptTok]) checkInvariants(prompt, await tok.encode(prompt));
  });
}

test('offset unit: the binding reports code points; we return UTF-16 indices that cover whole characters', async () => {
  const toks = (await gptTok.encode('a😀b')).filter((t) => !t.special);
  // 😀 is 4 UTF-8 bytes and no merge covers them: 4 byte tokens, each covering the whole emoji.
  assert.deepEqual(
    toks.map((t) => [t.start, t.end, t.text]),
    [[0, 1, 'a'], [1, 3, '😀'], [1, 3, ''], [1, 3, ''], [1, 3, ''], [3, 4, 'b']],
  );
});

test('a token that spans a space and the first byte of an emoji still gets whole-character offsets', async () => {
  // Add a merge "Ġ" + "ð" (space + first UTF-8 byte of most emoji) to the GPT-2 style fixture.
  const { json } = tinyTokenizerJson({ bos: false });
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const added = json.added_tokens as { id: number }[];
  const eot = added[0]!;
  model.vocab['Ġð'] = eot.id;
  model.vocab['<|endoftext|>'] = eot.id + 1;
  eot.id += 1;
  model.merges.push('Ġ ð');
  const dir = path.join(root, 'crossmerge');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  const tok = await loadTokenizer(dir);
  const prompt = 'a 😀 b 👨‍👩‍👧';
  const toks = await tok.encode(prompt);
  checkInvariants(prompt, toks);
  const cross = toks.filter((t) => t.id === eot.id - 1);
  assert.equal(cross.length, 2); // " 😀" and " 👨"
  assert.deepEqual([cross[0]!.start, cross[0]!.end, cross[0]!.text], [1, 4, ' 😀']);
  assert.deepEqual(toks[2]!, { id: toks[2]!.id, text: '', start: 2, end: 4, special: false });
});

test('accents: NFC é is one UTF-16 unit (two byte tokens), NFD is e + combining accent', async () => {
  const nfc = (await gptTok.encode('café'.normalize('NFC'))).filter((t) => !t.special);
  assert.deepEqual(nfc.slice(-2).map((t) => [t.start, t.end, t.text]), [[3, 4, 'é'], [3, 4, '']]);
  const nfdPrompt = 'café'.normalize('NFD');
  assert.equal(nfdPrompt.length, 5);
  const nfd = (await gptTok.encode(nfdPrompt)).filter((t) => !t.special);
  assert.deepEqual(nfd.slice(-3).map((t) => [t.start, t.end, t.text]), [[3, 4, 'e'], [4, 5, '\u0301'], [4, 5, '']]);
});

test('tokens that own their range decode to exactly the prompt slice', async () => {
  for (const prompt of Object.values(PROMPTS)) {
    const toks = (await bosTok.encode(prompt)).filter((t) => !t.special);
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      const shared = (toks[i - 1] && toks[i - 1]!.end > t.start) || (toks[i + 1] && toks[i + 1]!.start < t.end);
      if (!shared) assert.equal(bosTok.decodeToken(t.id), prompt.slice(t.start, t.end), `token ${t.id} in ${JSON.stringify(prompt)}`);
    }
  }
});

test('common English words are single multi-byte tokens', async () => {
  const toks = await gptTok.encode('on the mat and the dog');
  const texts = toks.map((t) => t.text);
  assert.ok(texts.includes(' the'), JSON.stringify(texts));
  assert.ok(toks.length < 'on the mat and the dog'.length / 2, JSON.stringify(texts));
});

test('BOS from the TemplateProcessing post-processor: special, empty range at 0, text <s>', async () => {
  const toks = await bosTok.encode('Hello there');
  assert.deepEqual(toks[0], { id: 0, text: '<s>', start: 0, end: 0, special: true });
  assert.equal(toks.filter((t) => t.special).length, 1);
  const empty = await bosTok.encode('');
  assert.deepEqual(empty, [{ id: 0, text: '<s>', start: 0, end: 0, special: true }]);
});

test('GPT-2 style: no BOS, nothing special; empty prompt gives no tokens', async () => {
  const toks = await gptTok.encode('Hello there');
  assert.ok(toks.every((t) => !t.special));
  assert.equal(toks[0]!.start, 0);
  assert.deepEqual(await gptTok.encode(''), []);
});

test('a special token spelled out in the prompt is special and covers its text', async () => {
  const prompt = 'hi<|endoftext|>there';
  const toks = await gptTok.encode(prompt);
  const eot = toks.find((t) => t.special)!;
  assert.deepEqual(eot, { id: gptVocab - 1, text: '<|endoftext|>', start: 2, end: 15, special: true });
  assert.equal(toks.map((t) => t.text).join(''), prompt);
});

test('vocabSize, file, bos/eos names', () => {
  assert.equal(bosTok.vocabSize, bosVocab);
  assert.equal(gptTok.vocabSize, gptVocab);
  assert.ok(bosVocab >= 300 && bosVocab <= 400);
  assert.equal(bosTok.file, path.join(root, 'bos', 'tokenizer.json'));
  assert.equal(bosTok.bosToken, '<s>');
  assert.equal(bosTok.eosToken, '</s>');
  assert.equal(gptTok.bosToken, '<|endoftext|>');
  assert.equal(gptTok.eosToken, '<|endoftext|>');
});

test('loadTokenizer also takes the tokenizer.json path itself', async () => {
  const t = await loadTokenizer(path.join(root, 'bos', 'tokenizer.json'));
  assert.equal(t.vocabSize, bosVocab);
});

test('decodeToken: surface text, partial UTF-8 bytes as <0xXX>, specials, unknown ids', async () => {
  const the = (await gptTok.encode(' the')).find((t) => t.text === ' the')!;
  assert.equal(gptTok.decodeToken(the.id), ' the');
  assert.equal(bosTok.decodeToken(0), '<s>');
  assert.equal(bosTok.decodeToken(1), '</s>');
  assert.equal(gptTok.decodeToken(gptVocab - 1), '<|endoftext|>');
  const e = (await gptTok.encode('é')).map((t) => gptTok.decodeToken(t.id));
  assert.deepEqual(e, ['<0xC3>', '<0xA9>']);
  const nl = (await gptTok.encode('\n')).map((t) => gptTok.decodeToken(t.id));
  assert.deepEqual(nl, ['\n']);
  assert.equal(gptTok.decodeToken(123456), '<id 123456>');
  assert.equal(gptTok.decodeToken(-1), '<id -1>');
});

test('deterministic fixture', () => {
  assert.deepEqual(tinyTokenizerJson({ bos: true }), tinyTokenizerJson({ bos: true }));
  const a = fs.readFileSync(path.join(root, 'gpt', 'tokenizer.json'), 'utf8');
  const dir = path.join(root, 'gpt2');
  writeTinyTokenizer(dir, { bos: false });
  assert.equal(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'), a);
});

// ---- errors ----

async function expectTokError(target: string, ...needles: (string | RegExp)[]): Promise<void> {
  await assert.rejects(loadTokenizer(target), (e: unknown) => {
    assert.ok(e instanceof EngineError, `EngineError, got ${String(e)}`);
    assert.equal(e.code, 'TOKENIZER');
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.ok(!/\bat .*\.(js|ts):\d+/.test(e.message), `no stack: ${e.message}`);
    assert.ok(!e.message.includes('Error loading from file'), e.message);
    for (const n of needles) {
      if (typeof n === 'string') assert.ok(e.message.includes(n), `${JSON.stringify(n)} in: ${e.message}`);
      else assert.match(e.message, n);
    }
    return true;
  });
}

function badDir(name: string, tokenizerJson: string | null, extra: Record<string, string> = {}): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  if (tokenizerJson !== null) fs.writeFileSync(path.join(dir, 'tokenizer.json'), tokenizerJson);
  for (const [f, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

test('error: folder does not exist', async () => {
  const dir = path.join(root, 'nope');
  await expectTokError(dir, dir, 'tokenizer.json');
});

test('error: tokenizer.json missing names the folder and what is needed', async () => {
  const dir = badDir('empty', null);
  await expectTokError(dir, dir, 'no tokenizer.json', 'Hugging Face tokenizer.json');
  const sp = badDir('sentencepiece', null, { 'tokenizer.model': 'x' });
  await expectTokError(sp, sp, 'tokenizer.model');
});

test('error: not JSON', async () => {
  const dir = badDir('notjson', '{"version": "1.0", "model": ');
  await expectTokError(dir, path.join(dir, 'tokenizer.json'), 'not valid JSON');
});

test('error: JSON but not a tokenizer', async () => {
  await expectTokError(badDir('array', '[1, 2]'), path.join(root, 'array', 'tokenizer.json'), 'not a Hugging Face tokenizer.json');
  await expectTokError(badDir('nomodel', '{"version": "1.0"}'), path.join(root, 'nomodel', 'tokenizer.json'), '"model"');
});

test('error: malformed tokenizer gives the binding reason in one line', async () => {
  const j = tinyTokenizerJson({ bos: false }).json as { model: { merges: string[] } };
  j.model.merges.push('zz qq');
  const dir = badDir('badmerge', JSON.stringify(j));
  await expectTokError(dir, path.join(dir, 'tokenizer.json'), 'malformed or unsupported', /`zz` out of vocabulary/);
});

test('error: unsupported model type', async () => {
  const j = tinyTokenizerJson({ bos: false }).json as { model: Record<string, unknown> };
  j.model = { type: 'FancyNewModel', vocab: {} };
  const dir = badDir('unsupported', JSON.stringify(j));
  await expectTokError(dir, path.join(dir, 'tokenizer.json'), 'malformed or unsupported');
});

test('error: Git LFS pointer', async () => {
  const dir = badDir('lfs', 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
  await expectTokError(dir, path.join(dir, 'tokenizer.json'), 'git lfs pull');
});

test('error: bad tokenizer_config.json is named', async () => {
  const good = JSON.stringify(tinyTokenizerJson({ bos: true }).json);
  const dir = badDir('badconfig', good, { 'tokenizer_config.json': '{oops' });
  await expectTokError(dir, path.join(dir, 'tokenizer_config.json'), 'not valid JSON');
});

test('post-processor: a template naming an undefined special token is refused before the binding aborts on it', async () => {
  const { postProcessorProblem } = await import('../../src/engine/sources/tokenizer');
  const real = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'models', 'default', 'tokenizer.json'), 'utf8')).post_processor;
  assert.equal(postProcessorProblem(real, 'post_processor'), undefined, 'the default model\'s Sequence[ByteLevel, TemplateProcessing] is sound');
  const broken = JSON.parse(JSON.stringify(real));
  broken.processors[1].single[0].SpecialToken.id = '<bos>';
  assert.equal(postProcessorProblem(broken, 'post_processor'), 'post_processor.processors[1].single uses the special token "<bos>", which its special_tokens do not define');
  broken.processors[1].single[0].SpecialToken.id = '<s>';
  broken.processors[1].special_tokens['<s>'].tokens = [];
  assert.match(postProcessorProblem(broken, 'post_processor')!, /special_tokens\["<s>"\]\.tokens does not match its ids/);
  assert.match(postProcessorProblem({ type: 'RobertaProcessing', sep: ['</s>', -1], cls: ['<s>', 0] }, 'pp')!, /pp\.sep is not a \[token, id\] pair/);
  assert.equal(postProcessorProblem({ type: 'ByteLevel' }, 'pp'), undefined);
});

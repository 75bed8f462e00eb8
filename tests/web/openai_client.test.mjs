// The official OpenAI SDK against `docvlm serve`'s OpenAI-compatible API (embedded model).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import net from 'node:net';
import {startServer, pngDataUrl} from './server.mjs';

const MODEL = 'docvlm-small';
let server, client, lineImage;

// What MinerU's client (mineru-vl-utils, http-client backend) sends besides model and messages.
const minerUExtras = {
    temperature: 0, top_p: 0.01, presence_penalty: 0, max_completion_tokens: 512,
    top_k: 1, repetition_penalty: 1.0, skip_special_tokens: false, vllm_xargs: {no_repeat_ngram_size: 100},
};
const recognise = (prompt = '\nText Recognition:') => [{
    role: 'user',
    content: [{type: 'image_url', image_url: {url: lineImage}}, {type: 'text', text: prompt}],
}];
const newClient = (baseURL, apiKey = 'unused') =>
    new OpenAI({baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 120_000});

before(async () => {
    lineImage = await pngDataUrl('examples/data/line.png');
    server = await startServer();
    client = newClient(server.url);
});

after(async () => {
    if (!server) return;
    const {code, signal} = await server.stop();
    assert.equal(signal, null, `server died of ${signal}\n${server.stderr}`);
    assert.equal(code, 0, `server exit code ${code}\n${server.stderr}`);
});

let recognised;  // the non-streamed answer, compared with the streamed one

test('models.list() has exactly docvlm-small', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, [MODEL]);
    assert.equal(server.model, MODEL);
});

test('chat.completions.create recognises a text line', async () => {
    const r = await client.chat.completions.create({model: MODEL, messages: recognise(), ...minerUExtras});
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.role, 'assistant');
    recognised = r.choices[0].message.content;
    assert.match(recognised, /Cotton et al/);
    assert.ok(r.usage && r.usage.completion_tokens > 0, 'usage.completion_tokens > 0');
});

test('stream: true yields the same text through the SDK iterator', async () => {
    const stream = await client.chat.completions.create({model: MODEL, messages: recognise(), ...minerUExtras,
                                                          stream: true, stream_options: {include_usage: true}});
    let text = '', finish = null, chunks = 0, usage = null;
    for await (const chunk of stream) {
        ++chunks;
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
            if (c.delta?.content) text += c.delta.content;
            if (c.finish_reason) finish = c.finish_reason;
        }
    }
    assert.ok(chunks >= 2, `only ${chunks} chunk(s)`);
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 0, 'include_usage gives a usage chunk');
    const expected = recognised ?? (await client.chat.completions.create({model: MODEL, messages: recognise(), ...minerUExtras})).choices[0].message.content;
    assert.equal(text, expected);
});

test('an unsupported prompt is a 400 APIError with a code', async () => {
    await assert.rejects(
        client.chat.completions.create({model: MODEL, messages: [{role: 'user', content: 'Write a poem about cotton.'}], temperature: 0}),
        (e) => {
            assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
            assert.ok(e instanceof OpenAI.BadRequestError, `not a BadRequestError: ${e.constructor.name}`);
            assert.equal(e.status, 400);
            assert.ok(e.code, 'error.code is set');
            assert.equal(typeof e.error?.message, 'string');
            assert.ok(e.type, 'error.type is set');
            return true;
        });
});

test('an unknown model is a 404 NotFoundError', async () => {
    await assert.rejects(client.chat.completions.create({model: 'gpt-4o', messages: recognise(), temperature: 0}),
                         (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && Boolean(e.code));
});

test('--api-key: a wrong key is a 401 AuthenticationError, the right key works', async () => {
    const keyed = await startServer(['--api-key', 'k1']);
    try {
        await assert.rejects(newClient(keyed.url, 'wrong').models.list(),
                             (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
        await assert.rejects(newClient(keyed.url, 'wrong').chat.completions.create({model: MODEL, messages: recognise(), temperature: 0}),
                             (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && Boolean(e.code));
        const good = newClient(keyed.url, 'k1');
        const ids = [];
        for await (const m of good.models.list()) ids.push(m.id);
        assert.deepEqual(ids, [MODEL]);
        const r = await good.chat.completions.create({model: MODEL, messages: recognise(), ...minerUExtras});
        assert.match(r.choices[0].message.content, /Cotton et al/);
    } finally {
        const {code, signal} = await keyed.stop();
        assert.equal(signal, null, keyed.stderr);
        assert.equal(code, 0, `keyed server exit code ${code}\n${keyed.stderr}`);
    }
});

test('SIGTERM lets a streamed request in flight finish, then exits 0', async () => {
    const s = await startServer();
    let text = '', finish = null, chunks = 0;
    try {
        const stream = await newClient(s.url).chat.completions.create({model: MODEL, messages: recognise(), ...minerUExtras, stream: true});
        for await (const chunk of stream) {
            if (++chunks === 1) s.child.kill('SIGTERM');  // the answer has begun: the request is in flight
            for (const c of chunk.choices) {
                if (c.delta?.content) text += c.delta.content;
                if (c.finish_reason) finish = c.finish_reason;
            }
        }
    } finally {
        const {code, signal} = await s.stop();
        assert.equal(signal, null, s.stderr);
        assert.equal(code, 0, `exit code ${code}\n${s.stderr}`);
    }
    assert.match(text, /Cotton et al/);
    assert.equal(finish, 'stop');
    assert.match(s.stderr, /signal 15/);
});

// Browsers, the OpenAI SDK and MinerU's client keep connections open: SIGTERM answers the requests in
// flight, then exits without waiting for idle keep-alive connections (or for a half-sent request).
test('SIGTERM does not wait for idle keep-alive connections', async () => {
    const s = await startServer();
    const sock = net.connect(s.port, '127.0.0.1');
    sock.on('error', () => {});
    try {
        await new Promise((resolve) => {
            sock.once('data', resolve);
            sock.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');  // HTTP/1.1: the connection stays open
        });
        const t0 = Date.now();
        s.child.kill('SIGTERM');
        const exited = await Promise.race([new Promise((r) => s.child.once('exit', () => r(true))),
                                           new Promise((r) => setTimeout(() => r(false), 3000))]);
        assert.ok(exited, `still running ${Date.now() - t0} ms after SIGTERM with one idle keep-alive connection open`);
    } finally {
        sock.destroy();  // the server then sees the connection close and exits
        const {code} = await s.stop();
        assert.equal(code, 0, s.stderr);
    }
});

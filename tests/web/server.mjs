// Starts `docvlm serve --port 0 --quiet` for a test and stops it with SIGTERM.
// The binary is $DOCVLM_BIN, or ../../build/bin/docvlm relative to this folder.
import {spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const docvlmBin = path.resolve(process.env.DOCVLM_BIN || path.join(here, '..', '..', 'build', 'bin', 'docvlm'));

const READY = /^docvlm serve: (\S+) on (http:\/\/[^\s]+:(\d+))/m;

/** Spawns the server; resolves to {url, port, model, stop()} once it prints its address. */
export async function startServer(extraArgs = [], {timeoutMs = 60_000} = {}) {
    if (!existsSync(docvlmBin)) throw new Error(`docvlm binary not found: ${docvlmBin} (set DOCVLM_BIN)`);
    const child = spawn(docvlmBin, ['serve', '--port', '0', '--quiet', ...extraArgs], {stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '', stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s) => { stderr += s; });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({code, signal})));
    const ready = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server did not start within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)); }, timeoutMs);
        child.stdout.setEncoding('utf8').on('data', (s) => {
            stdout += s;
            const m = READY.exec(stdout);
            if (m) { clearTimeout(timer); resolve({model: m[1], url: m[2], port: Number(m[3])}); }
        });
        child.once('error', (e) => { clearTimeout(timer); reject(e); });
        exited.then(({code, signal}) => { clearTimeout(timer); reject(new Error(`server exited early (code ${code}, signal ${signal})\nstdout: ${stdout}\nstderr: ${stderr}`)); });
    });
    let stopped = null;
    return {
        ...ready,
        child,
        get stderr() { return stderr; },
        /** SIGTERM, then waits for the exit (SIGKILL after timeoutMs); resolves to {code, signal}. */
        stop(stopTimeoutMs = 30_000) {
            if (stopped) return stopped;
            stopped = (async () => {
                if (child.exitCode !== null || child.signalCode !== null) return exited;
                child.kill('SIGTERM');
                const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
                const r = await exited;
                clearTimeout(timer);
                return r;
            })();
            return stopped;
        },
    };
}

/** data: URL of a PNG file in the repository. */
export async function pngDataUrl(relPath) {
    const {readFile} = await import('node:fs/promises');
    return 'data:image/png;base64,' + (await readFile(path.join(repo, relPath))).toString('base64');
}

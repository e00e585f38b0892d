// Starts what the browser tests need and returns the function that stops it:
// the real `rdp-doctor` server (with a private PostgreSQL in a temporary state directory),
// a real `rdp-doctor-agent` enrolled with a fresh token, and a port that never answers.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const bin = (name: string) => join(root, 'target', 'debug', name);

/** Starts a process and resolves with the first stdout/stderr match of `pattern`. */
function startAndWaitFor(
  command: string,
  args: string[],
  pattern: RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // Everything each process says is kept for a failing run: test-results/NAME.log.
    mkdirSync(join(__dirname, '..', 'test-results'), { recursive: true });
    const log = createWriteStream(join(__dirname, '..', 'test-results', `${command.split('/').pop()}.log`));
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${command} did not print ${pattern} in 90 s:\n${output}`)), 90_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = output.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ child, match });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before printing ${pattern}:\n${output}`));
    });
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  return new Promise((done) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  // PostgreSQL runs as an unprivileged user when we are root: it must be able to enter this.
  const stateDir = mkdtempSync(join(tmpdir(), 'rdp-doctor-e2e-'));
  chmodSync(stateDir, 0o755);
  const children: ChildProcess[] = [];
  try {
    // The path check spreads its connections over 2 s instead of 30: the tests do not wait
    // half a minute for it.
    const server = await startAndWaitFor(
      bin('rdp-doctor'),
      ['serve', '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--site-root', join(root, 'target', 'site'), '--heartbeat-secs', '2', '--path-quality-window-ms', '2000'],
      /running at (http:\/\/[\d.:]+)\//,
      { RUST_LOG: process.env.RDP_DOCTOR_E2E_LOG ?? 'info,sqlx=warn' },
    );
    children.push(server.child);
    const url = server.match[1];

    const token = execFileSync(bin('rdp-doctor'), ['token', 'create', '--state-dir', stateDir, '--expires-in', '5m'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    const agentConfig = join(stateDir, 'agent.json');
    execFileSync(bin('rdp-doctor-agent'), ['enroll', '--server', url, '--token', token, '--config', agentConfig], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const agent = await startAndWaitFor(
      bin('rdp-doctor-agent'),
      ['run', '--config', agentConfig, '--listen', '127.0.0.1:0'],
      /heartbeat accepted/,
    );
    children.push(agent.child);

    const silent = await startAndWaitFor('python3', [join(__dirname, 'no-answer-port.py')], /^(\d+)$/m);
    children.push(silent.child);

    process.env.RDP_DOCTOR_URL = url;
    process.env.OPEN_PORT = new URL(url).port;
    process.env.NO_ANSWER_PORT = silent.match[1];
  } catch (error) {
    await Promise.all(children.map(stop));
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  return async () => {
    // The server stops its PostgreSQL when it stops; stop the agent first.
    for (const child of [...children].reverse()) await stop(child);
    rmSync(stateDir, { recursive: true, force: true });
  };
}

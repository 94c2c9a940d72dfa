/** Runs `otp-shield serve` as a real child process and waits until it listens. */
import { spawn, type ChildProcess } from 'node:child_process';

export async function startInstance(configFile: string, dataDir: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--config', configFile, 'serve'], {
    env: { ...process.env, NODE_ENV: 'test', OTPSHIELD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    // A bound, not an expectation: an instance starts in a few seconds, but a loaded 2-core machine once took
    // more than 30 s to print anything (a CI run beside two benchmark processes). An instance that does not
    // start is killed, so its pipes do not keep the test file's process alive.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`instance did not start:\n${out}`));
    }, 90_000);
    timer.unref();
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}:\n${out}`));
    });
  });
  return { url, proc };
}

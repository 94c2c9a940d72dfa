/** Runs `otp-shield serve` as a real child process and waits until it listens. */
import { spawn, type ChildProcess } from 'node:child_process';

export async function startInstance(configFile: string, dataDir: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--config', configFile, 'serve'], {
    env: { ...process.env, NODE_ENV: 'test', OTPSHIELD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance did not start:\n${out}`)), 30_000);
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
    proc.on('exit', (code) => reject(new Error(`instance exited with ${code}:\n${out}`)));
  });
  return { url, proc };
}

import { execFile } from 'node:child_process';
import {
  access,
  chmod,
  constants,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSchema, envName, serveSchema } from '../../src/core/config.js';

const REPO = join(import.meta.dirname, '../..');
const UNITS_DIR = join(REPO, 'infra/systemd');
const BUILT_BIN = join(REPO, 'dist/cli/main.js');
const UNITS = ['pxecache-serve.service', 'pxecache-agent.service'] as const;
// Where the units (and docs/deploy-node.md) install pxecache.
const INSTALLED_BIN = '/opt/pxecache/dist/cli/main.js';
const ENV_FILE = '/etc/pxecache/pxecache.env';

type Unit = Map<string, string[]>; // "Section.Key" -> every value, in order

/** systemd's unit syntax as far as these files use it: sections, Key=value, comments; no continuation lines. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    expect(line.endsWith('\\'), `no continuation lines: ${line}`).toBe(false);
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `Key=value: ${line}`).toBeGreaterThan(0);
    const key = `${section}.${line.slice(0, eq).trim()}`;
    unit.set(key, [...(unit.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** The unit's Environment= assignments (one per line here). */
function environment(unit: Unit): Map<string, string> {
  return new Map(
    (unit.get('Service.Environment') ?? []).map((assignment) => {
      const eq = assignment.indexOf('=');
      return [assignment.slice(0, eq), assignment.slice(eq + 1)];
    }),
  );
}

function run(cmd: string, args: string[]) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH ?? '', LANG: 'C' }, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        output: `${stdout}${stderr}`.trim(),
      }),
    );
  });
}

const units = new Map<string, Unit>();
beforeAll(async () => {
  for (const name of UNITS) units.set(name, parseUnit(await readFile(join(UNITS_DIR, name), 'utf8')));
});

describe('systemd-analyze verify', () => {
  // verify checks what a unit names on disk: every ExecStart=/ExecReload= command must be an executable file, and
  // the units it depends on (sysinit.target, network-online.target, multi-user.target) must exist. Rewriting
  // ExecStart to this checkout's path would verify a different file than the one installed, so the units are
  // verified unchanged with --root=<a temp root> laid out as docs/deploy-node.md installs them: the units in
  // /etc/systemd/system, the built bin at /opt/pxecache/dist/cli/main.js (copied from dist/, executable as the
  // build leaves it), /bin/kill (ExecReload=), and the host's own systemd units for the dependencies. Under
  // --root, systemd resolves all of those inside the root, not on the host. verify does not look up User= or
  // EnvironmentFile=, so no pxecache user or env file is needed (nor created on this machine); the test below
  // covers the env file. Nothing is started: verify only loads the units.
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pxecache-systemd-'));
    const binMode = (await stat(BUILT_BIN).catch(() => null))?.mode;
    if (binMode === undefined) throw new Error(`${BUILT_BIN} missing: run npm run build first`);
    await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
    for (const name of UNITS) await copyFile(join(UNITS_DIR, name), join(root, 'etc/systemd/system', name));
    await mkdir(join(root, dirname(INSTALLED_BIN)), { recursive: true });
    await copyFile(BUILT_BIN, join(root, INSTALLED_BIN));
    await chmod(join(root, INSTALLED_BIN), binMode & 0o7777);
    await mkdir(join(root, 'bin'));
    await copyFile('/bin/kill', join(root, 'bin/kill'));
    await chmod(join(root, 'bin/kill'), 0o755);
    const hostUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'];
    const found = await Promise.all(
      hostUnits.map((d) =>
        access(join(d, 'sysinit.target')).then(
          () => d,
          () => null,
        ),
      ),
    );
    const hostUnitDir = found.find((d) => d !== null);
    if (!hostUnitDir)
      throw new Error('no systemd unit directory on this host: apt-get install systemd (scripts/setup.sh)');
    await cp(hostUnitDir, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the built bin the units start is executable', async () => {
    await expect(access(join(root, INSTALLED_BIN), constants.X_OK)).resolves.toBeUndefined();
  });

  it('finds nothing to say about either unit', async () => {
    const { code, output } = await run('systemd-analyze', ['verify', `--root=${root}`, ...UNITS]);
    // verify exits 0 on warnings (an unknown key, a value it cannot parse: "ignoring"), so any output fails too.
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  // The check above can fail: a misspelt directive and a bad value in a copy are reported, though the exit is 0.
  it('reports a broken copy (the check above is not vacuous)', async () => {
    const broken = join(root, 'etc/systemd/system/pxecache-broken.service');
    const text = await readFile(join(UNITS_DIR, 'pxecache-agent.service'), 'utf8');
    await writeFile(
      broken,
      text.replace('ProtectHome=yes', 'ProtectHom=yes').replace('RestrictNamespaces=yes', 'RestrictNamespaces=maybe'),
    );
    const { output } = await run('systemd-analyze', ['verify', `--root=${root}`, 'pxecache-broken.service']);
    expect(output).toMatch(/Unknown key.*ProtectHom/);
    expect(output).toMatch(/maybe/);
  });
});

describe('hardening of the units', () => {
  const common: Record<string, string> = {
    'Unit.After': 'network-online.target',
    'Unit.Wants': 'network-online.target',
    'Service.User': 'pxecache',
    'Service.Group': 'pxecache',
    'Service.EnvironmentFile': ENV_FILE,
    'Service.Restart': 'on-failure',
    'Service.RestartPreventExitStatus': '2',
    'Service.UMask': '0022',
    'Service.NoNewPrivileges': 'yes',
    'Service.ProtectSystem': 'strict',
    'Service.PrivateTmp': 'yes',
    'Service.ProtectHome': 'yes',
    'Service.PrivateDevices': 'yes',
    'Service.ProtectKernelTunables': 'yes',
    'Service.ProtectKernelModules': 'yes',
    'Service.ProtectControlGroups': 'yes',
    'Service.RestrictAddressFamilies': 'AF_INET AF_INET6 AF_UNIX',
    'Service.RestrictNamespaces': 'yes',
    'Service.LockPersonality': 'yes',
    'Service.SystemCallArchitectures': 'native',
    'Service.CapabilityBoundingSet': '',
    'Service.AmbientCapabilities': '',
    'Install.WantedBy': 'multi-user.target',
  };
  const specific: Record<(typeof UNITS)[number], Record<string, string>> = {
    'pxecache-serve.service': {
      'Service.ExecStart': `${INSTALLED_BIN} serve`,
      'Service.ExecReload': '/bin/kill -HUP $MAINPID',
      'Service.ReadWritePaths': '/var/lib/pxecache/store',
    },
    'pxecache-agent.service': {
      'Service.ExecStart': `${INSTALLED_BIN} agent`,
      'Service.ReadWritePaths': '/var/lib/tftpboot /var/lib/tftpboot.state',
    },
  };

  it.each(UNITS)('%s has every directive, each set once', (name) => {
    const unit = units.get(name)!;
    for (const [key, value] of Object.entries({ ...common, ...specific[name] })) {
      expect(unit.get(key), `${name}: ${key}`).toEqual([value]);
    }
  });

  it.each(UNITS)("%s leaves MemoryDenyWriteExecute off: V8's JIT needs writable-executable memory", (name) => {
    expect(units.get(name)!.has('Service.MemoryDenyWriteExecute')).toBe(false);
  });

  it.each(UNITS)('%s takes no option on the command line: secrets and paths come from the environment', (name) => {
    expect(units.get(name)!.get('Service.ExecStart')![0]).not.toMatch(/--/);
  });

  it('the paths each unit may write are the ones it is configured with', () => {
    const serve = environment(units.get('pxecache-serve.service')!);
    expect(serve.get('PXECACHE_STORE')).toBe('file:/var/lib/pxecache/store');
    expect(serve.has('PXECACHE_TFTP_ROOT')).toBe(false);
    const agent = environment(units.get('pxecache-agent.service')!);
    const tftpRoot = agent.get('PXECACHE_TFTP_ROOT');
    expect(tftpRoot).toBe('/var/lib/tftpboot');
    // DESIGN.md: the state dir is a sibling of the root, never inside it.
    expect(agent.get('PXECACHE_STATE_DIR')).toBe(`${tftpRoot}.state`);
    expect(agent.has('PXECACHE_TOKEN')).toBe(false);
  });

  it('Environment= in each unit names real options of its command', () => {
    const options = {
      'pxecache-serve.service': new Set(Object.keys(serveSchema.shape).map(envName)),
      'pxecache-agent.service': new Set(Object.keys(agentSchema.shape).map(envName)),
    };
    for (const name of UNITS) {
      for (const key of environment(units.get(name)!).keys()) expect(options[name], `${name}: ${key}`).toContain(key);
    }
  });
});

describe('pxecache.env.example', () => {
  type Option = { safeParse(v: unknown): { success: boolean; data?: unknown } };
  const shapes: Record<string, Option>[] = [serveSchema.shape, agentSchema.shape];
  const byEnv = new Map(shapes.flatMap((shape) => Object.entries(shape).map(([flag, o]) => [envName(flag), o])));
  let text: string;
  beforeAll(async () => {
    text = await readFile(join(UNITS_DIR, 'pxecache.env.example'), 'utf8');
  });

  it('names real options only (PXECACHE_* of serve and agent)', () => {
    const named = new Set(text.match(/\bPXECACHE_[A-Z0-9_]+/g) ?? []);
    expect(named.size).toBeGreaterThan(0);
    for (const name of named) expect(byEnv.has(name), `${name} is not an option of serve or agent`).toBe(true);
  });

  it('lists every option of both commands, except the paths the agent unit sets and --once', () => {
    const assigned = new Set([...text.matchAll(/^#?(PXECACHE_[A-Z0-9_]+)=/gm)].map((m) => m[1]));
    // pxecache-serve would read a PXECACHE_TFTP_ROOT in the shared file as "run an agent in-process", and
    // PXECACHE_ONCE would turn the long-running agent unit into a one-shot sync that exits.
    const left = ['PXECACHE_TFTP_ROOT', 'PXECACHE_STATE_DIR', 'PXECACHE_ONCE'];
    for (const name of byEnv.keys()) {
      if (left.includes(name)) expect(assigned.has(name), name).toBe(false);
      else expect(assigned, name).toContain(name);
    }
  });

  it('shows the defaults: the schema default, or the one the unit sets', () => {
    const unitDefaults = new Map([
      ...environment(units.get('pxecache-serve.service')!),
      ...environment(units.get('pxecache-agent.service')!),
    ]);
    let checked = 0;
    for (const [, name, value] of text.matchAll(/^#?(PXECACHE_[A-Z0-9_]+)=(.*)$/gm)) {
      const parsed = byEnv.get(name!)!.safeParse(undefined);
      const def = unitDefaults.get(name!) ?? (parsed.success && parsed.data !== undefined ? String(parsed.data) : null);
      if (def === null) continue; // no default (optional, or required as PXECACHE_SOURCE): an example value
      expect(value, name).toBe(def);
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('is commented out entirely: installed as is, it changes nothing but what the operator uncomments', () => {
    const active = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(active).toEqual([]);
  });
});

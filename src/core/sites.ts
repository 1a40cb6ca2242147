import { ConfigError, NotFoundError } from './errors.js';

/** A virtual smart proxy: Foreman registers `<base>/sites/<name>` as its own Smart Proxy. */
export interface Site {
  readonly name: string;
  /** smart-proxy's `tftp_servername` for this site; empty when unset. */
  readonly serverName: string;
}

export const DEFAULT_SITE = 'default';
export const SITE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * `--sites "east=10.0.0.1,west"`: the named sites and their TFTP server names. The default site (the unprefixed
 * routes) always exists and takes `--server-name`.
 */
export function parseSites(spec: string, defaultServerName: string): Site[] {
  const sites: Site[] = [{ name: DEFAULT_SITE, serverName: defaultServerName }];
  const issues: string[] = [];
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    const name = eq === -1 ? item : item.slice(0, eq);
    const serverName = eq === -1 ? '' : item.slice(eq + 1);
    if (!SITE_NAME.test(name)) issues.push(`--sites: "${name}" must be lowercase letters, digits and "-"`);
    else if (sites.some((s) => s.name === name)) issues.push(`--sites: "${name}" is listed twice`);
    else if (!/^[A-Za-z0-9.:_-]*$/.test(serverName))
      issues.push(`--sites: server name "${serverName}" of ${name} is not a host`);
    else sites.push({ name, serverName });
  }
  if (issues.length) throw new ConfigError(issues);
  return sites;
}

/** The configured site named `name`, or NotFoundError (`code`: the change feed answers `unknown-site`). */
export function findSite(sites: readonly Site[], name: string, code = 'not-found'): Site {
  const site = sites.find((s) => s.name === name);
  if (site) return site;
  const configured = sites.map((s) => s.name).join(', ');
  throw new NotFoundError(`no site "${name}" (configured: ${configured})`, code);
}

import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.js';
import { defaultUrlPolicy, nodeUrlPolicy, parseUpstreamUrl } from '../../../src/core/url-policy.js';

const FTP = 'ftp://mirror.example/centos/9/images/pxeboot/vmlinuz';

function refusal(raw: string, policy = defaultUrlPolicy): InputError {
  try {
    parseUpstreamUrl(raw, 'path', policy);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error(`${raw} was accepted`);
}

describe('URL policy', () => {
  it('the default policy (Workers, Lambda: no raw sockets) refuses ftp:// saying it is not supported here', () => {
    expect(defaultUrlPolicy.fetchSchemes).not.toContain('ftp:');
    for (const err of [refusal(FTP), refusal(FTP, defaultUrlPolicy)]) {
      expect(err.field).toBe('path');
      expect(err.message).toMatch(/ftp.*not supported.*on this runtime/);
    }
  });

  it('the Node policy accepts ftp:// as an ftp upstream, keeps http(s) and nfs, refuses other schemes', () => {
    expect(parseUpstreamUrl(FTP, 'path', nodeUrlPolicy).kind).toBe('ftp');
    expect(parseUpstreamUrl('https://mirror.example/vmlinuz', 'path', nodeUrlPolicy).kind).toBe('http');
    expect(parseUpstreamUrl('nfs://filer/export/vmlinuz', 'path', nodeUrlPolicy).kind).toBe('nfs');
    expect(refusal('gopher://mirror.example/vmlinuz', nodeUrlPolicy).message).toMatch(
      /scheme "gopher" is not supported/,
    );
  });
});

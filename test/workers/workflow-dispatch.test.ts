/**
 * Starting or joining the fetch Workflow for a job. Local workerd and production disagree on a duplicate instance
 * id (locally `create` returns normally, production throws `instance.already_exists`), and the production answer
 * cannot be caused locally: the binding here is a stand-in that answers as each side does. The local behaviour
 * end to end is covered by test/integration/workers.test.ts against real workerd.
 */
import { describe, expect, it } from 'vitest';
import type { DispatchedJob } from '../../src/core/fetcher.js';
import { silentLogger } from '../../src/core/ports.js';
import { startWorkflow } from '../../src/runtime/workers/workflow-dispatch.js';

const job: DispatchedJob = {
  lease: { key: 'leases/boot/x/0123456789abcdef/1', record: { owner: 'w', jobId: 'job-1', url: 'u', expiresAt: 1 } },
  name: 'boot/x-vmlinuz',
  basename: 'vmlinuz',
  url: 'http://127.0.0.1/vmlinuz',
  startedAt: 0,
  jobId: 'job-1',
  previous: null,
};

/** A binding that answers `get` and `create` as told, recording the creates. */
function binding(answers: { get: () => Promise<unknown>; create: () => Promise<unknown> }) {
  const created: unknown[] = [];
  const wf = {
    get: () => answers.get(),
    create: (opts: unknown) => {
      created.push(opts);
      return answers.create();
    },
  } as unknown as Workflow<DispatchedJob>;
  return { wf, created };
}

const notFound = () => Promise.reject(new Error('instance.not_found'));

describe('startWorkflow', () => {
  it('creates the instance named after the job, with the job as its params, when none exists', async () => {
    const { wf, created } = binding({ get: notFound, create: () => Promise.resolve({ id: 'job-1' }) });
    await startWorkflow(wf, job, silentLogger);
    expect(created).toEqual([{ id: 'job-1', params: job }]);
  });

  it('joins an existing instance without creating another', async () => {
    const { wf, created } = binding({ get: () => Promise.resolve({ id: 'job-1' }), create: notFound });
    await startWorkflow(wf, job, silentLogger);
    expect(created).toEqual([]);
  });

  it("joins when production's create loses a race for the id (instance.already_exists)", async () => {
    const exists = () => Promise.reject(new Error('instance.already_exists'));
    const { wf, created } = binding({ get: notFound, create: exists });
    await expect(startWorkflow(wf, job, silentLogger)).resolves.toBeUndefined();
    expect(created).toHaveLength(1);
  });

  it('fails on anything else, so the fetcher records the failure and frees the name', async () => {
    const down = () => Promise.reject(new Error('workflows unavailable'));
    await expect(startWorkflow(binding({ get: down, create: down }).wf, job, silentLogger)).rejects.toThrow(
      /unavailable/,
    );
    const refused = binding({ get: notFound, create: () => Promise.reject(new Error('quota exceeded')) });
    await expect(startWorkflow(refused.wf, job, silentLogger)).rejects.toThrow(/quota/);
  });
});

import { describe, expect, it } from 'vitest';
import { pickIdentities } from '../../src/sidekiq/reader.js';

describe('which members of processes are read', () => {
  const members = [
    'b:2:000000000002',
    'ours:7:000000000001',
    'a:1:000000000003',
    'ours:12:000000000004',
    'oursbutnot:1:000000000005',
  ];

  it('all of them, sorted, under the cap', () => {
    expect(pickIdentities(members, undefined, 5)).toEqual({
      identities: [
        'a:1:000000000003',
        'b:2:000000000002',
        'ours:12:000000000004',
        'ours:7:000000000001',
        'oursbutnot:1:000000000005',
      ],
      warnings: [],
    });
  });

  it("this host's first when capped, with a warning", () => {
    expect(pickIdentities(members, 'ours', 3)).toEqual({
      identities: ['ours:12:000000000004', 'ours:7:000000000001', 'a:1:000000000003'],
      warnings: ["Sidekiq processes has 5 members: read only 3, this host's first"],
    });
    expect(pickIdentities(members, undefined, 2).warnings).toEqual([
      'Sidekiq processes has 5 members: read only 2, in name order',
    ]);
  });
});

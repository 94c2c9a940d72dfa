/**
 * The simulated world's address space is real: the server's own IP intel (bundled ip-location-db data and the
 * shipped hosting-ASN list) must see a carrier's addresses, IPv4 and IPv6, as residential and in its market,
 * and the cloud and VPN addresses as hosting. Otherwise the effectiveness figures would measure the simulator's
 * mistakes (a real user "abroad", a flood that does not look like a cloud).
 *
 * It reads the bundled third-party data (`@ip-location-db/*`, semver ranges): a data update that moves one of
 * these blocks turns it red with no code change, on purpose — the world must then move too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Intel } from '../../src/signals/intel.ts';
import { Rng } from '../../src/sim/random.ts';
import { BOTNET_BLOCKS, DATACENTER_BLOCKS, DATACENTER_V6, MARKETS, TRAVEL_BLOCKS, VPN_BLOCKS, carrierIp, ipIn, v6In, type Ipv6Plan } from '../../src/sim/world.ts';

let intel: Intel;
before(async () => {
  intel = await Intel.load({ now: () => Date.now() });
});
after(() => intel.close());

/**
 * Every address `ipIn(blocks, i)` gives for i < n. Index i is the (i / blocks)-th address of block i % blocks,
 * and a block's addresses repeat after 64 (or 32) /24s × 254, so past blocks × the largest of those nothing new comes.
 */
function blockAddresses(blocks: readonly string[], n: number): string[] {
  const perBlock = Math.max(...blocks.map((b) => (b.split('.').length === 3 ? 32 : 64) * 254));
  return Array.from({ length: Math.min(n, blocks.length * perBlock) }, (_, i) => ipIn(blocks, i));
}

/** Every /48 of a plan, each at a random /64 and interface. */
function planSamples(plan: Ipv6Plan, rng: Rng): string[] {
  return Array.from({ length: plan.sites }, (_, s) => v6In(rng, plan, s * 65_536 + rng.int(65_536)));
}

describe('simulated world', () => {
  it('puts every carrier address, IPv4 and IPv6, in its market on a network that is not hosting', () => {
    const rng = new Rng(7);
    let v6 = 0;
    for (const m of MARKETS) {
      for (const c of [...m.mobile, ...m.fixed]) {
        // Real users draw from the pool, residential proxies from at least 5,000 addresses (scenarios.ts).
        const ips = [...blockAddresses(c.blocks, Math.max(c.pool, 5000)), ...(c.v6 ? planSamples(c.v6, rng) : [])];
        for (const ip of ips) {
          const f = intel.ipFacts(ip);
          assert.equal(f.country, m.country, `${c.name} ${ip}: located in ${f.country}`);
          // A few IPv4 pieces of carriers' blocks are not in the ASN data (so never on the hosting list either);
          // the IPv6 plans are chosen inside announced space.
          if (ip.includes(':')) assert.ok(f.asn !== null, `${c.name} ${ip}: no ASN announces it`);
          assert.equal(f.hosting, false, `${c.name} ${ip}: hosting (${f.asOrg})`);
          if (ip.includes(':')) v6++;
        }
      }
    }
    // Six markets' networks have IPv6 (not Nigeria's): the check above ran on every /48 of their plans.
    assert.ok(v6 >= 5000, `only ${v6} IPv6 samples`);
  });

  it('gives addresses inside the stated blocks', () => {
    assert.equal(ipIn(['212.102.32'], 0), '212.102.32.1');
    assert.equal(ipIn(['212.102.32'], 31), '212.102.63.1');
    assert.equal(ipIn(['212.102.32'], 32), '212.102.32.2');
    assert.equal(ipIn(['106.49'], 63), '106.49.63.1');
    assert.throws(() => ipIn(['212.102.40'], 0), /multiple of 32/);
  });

  it('draws IPv6 at a carrier\'s share, a fresh /64 per mobile session', () => {
    const tmobile = MARKETS.find((m) => m.country === 'US')!.mobile.find((c) => c.name === 'T-Mobile')!;
    const rng = new Rng(11);
    const ips = Array.from({ length: 2000 }, () => carrierIp(rng, tmobile));
    const v6 = ips.filter((ip) => ip.includes(':'));
    const share = v6.length / ips.length;
    assert.ok(Math.abs(share - tmobile.v6!.share) < 0.03, `IPv6 share ${share}`);
    const nets = new Set(v6.map((ip) => ip.split(':').slice(0, 4).join(':')));
    assert.ok(nets.size > v6.length * 0.99, `${nets.size} /64s for ${v6.length} sessions`);
  });

  it('puts the cloud and VPN addresses on hosting networks, IPv6 included', () => {
    const rng = new Rng(3);
    const ips = [...blockAddresses(DATACENTER_BLOCKS, 2000), ...blockAddresses(VPN_BLOCKS, 5000), ...DATACENTER_V6.flatMap((p) => planSamples(p, rng))];
    for (const ip of ips) assert.equal(intel.ipFacts(ip).hosting, true, `${ip} (${intel.ipFacts(ip).asOrg}) is not hosting`);
  });

  it('puts travellers on their host country\'s networks and the botnet on home networks', () => {
    for (const t of TRAVEL_BLOCKS) {
      for (const ip of blockAddresses(t.blocks, 20_000)) {
        const f = intel.ipFacts(ip);
        assert.ok(f.country === t.country && !f.hosting, `${ip}: ${f.country} ${f.asOrg}`);
      }
    }
    for (const ip of blockAddresses(BOTNET_BLOCKS, 50_000)) assert.equal(intel.ipFacts(ip).hosting, false, ip);
  });
});

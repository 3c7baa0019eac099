// Kinds of IP address no workload listens on, for what a name may resolve to (outbound endpoints, egress). Node's
// BlockList matches an IPv4-mapped IPv6 address (`::ffff:169.254.169.254`, `::ffff:a9fe:a9fe`) against the IPv4
// ranges, which string prefixes miss. Pure.
import { BlockList, isIP } from 'node:net';

/** Link-local and multicast: the cloud metadata service (169.254.169.254; fd00:ec2::254 on AWS) lives here. */
const LINK_LOCAL_OR_MULTICAST = new BlockList();
LINK_LOCAL_OR_MULTICAST.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL_OR_MULTICAST.addSubnet('224.0.0.0', 4, 'ipv4');
LINK_LOCAL_OR_MULTICAST.addSubnet('fe80::', 10, 'ipv6');
LINK_LOCAL_OR_MULTICAST.addSubnet('ff00::', 8, 'ipv6');
LINK_LOCAL_OR_MULTICAST.addAddress('fd00:ec2::254', 'ipv6');

/** "This network", the unspecified addresses and the limited broadcast. */
const UNSPECIFIED_OR_BROADCAST = new BlockList();
UNSPECIFIED_OR_BROADCAST.addSubnet('0.0.0.0', 8, 'ipv4');
UNSPECIFIED_OR_BROADCAST.addAddress('255.255.255.255', 'ipv4');
UNSPECIFIED_OR_BROADCAST.addAddress('::', 'ipv6');

function listed(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export function isLinkLocalOrMulticast(address: string): boolean {
  return listed(LINK_LOCAL_OR_MULTICAST, address);
}

/** An IP address a workload may listen on: not unspecified, broadcast, multicast or link-local (loopback may). */
export function isWorkloadAddress(address: string): boolean {
  return isIP(address) !== 0 && !listed(UNSPECIFIED_OR_BROADCAST, address) && !isLinkLocalOrMulticast(address);
}

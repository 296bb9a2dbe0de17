package swha

import (
	"slices"

	"github.com/swha/swha/objstore"
)

// Version skew on the Node: the standby's hello carries its schemas (see
// docs/WIRE.md); objstore/transform.go maps one version onto the other.

// noteSkew works out, from the standby's schemas (active role), what of
// this node's version the standby will not carry.
func (n *Node) noteSkew(theirs []*objstore.Schema) {
	reg := n.store.Registry()
	var reports []objstore.SkewReport
	for _, name := range reg.Names() {
		i := slices.IndexFunc(theirs, func(s *objstore.Schema) bool { return s.Name == name })
		rep := objstore.SkewReport{Type: name, Missing: true}
		if i >= 0 {
			rep = objstore.CompareSchemas(reg.Schema(name), theirs[i])
		}
		if !rep.Identical {
			n.log.Warn("standby runs another version of a type", "type", name, "skew", rep.String())
		}
		reports = append(reports, rep)
	}
	n.own.do(func() { n.peerSkew = reports })
}

// PeerSkew says how the two versions of each type differ. On an active it is
// what the standby will do with this node's types (from the schemas the
// standby sent when the session started): fields it lacks are dropped there,
// narrowed ones are range-checked. On a standby it is how the active's types
// map onto this node's, with the number of values dropped so far.
func (n *Node) PeerSkew() []objstore.SkewReport {
	if n.Role() == Standby {
		return n.store.PeerSkew()
	}
	var out []objstore.SkewReport
	n.own.do(func() { out = slices.Clone(n.peerSkew) })
	return out
}

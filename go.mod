module github.com/swha/swha

go 1.26.0

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/mdlayher/ethernet v0.0.0-20220221185849-529eae5b6118
)

require (
	github.com/vishvananda/netlink v1.3.1 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

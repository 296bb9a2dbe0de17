-- Wireshark dissector for the swha control-plane HA protocol, wire format version 1.
-- The byte layout is specified in docs/ARCHITECTURE.md ("Wire format (version 1)");
-- lab/wireshark/dissector_test.go checks this file against the Go encoder in frame/.
--
--   tshark -X lua_script:/path/to/swha.lua -r capture.pcap
--
-- Wireshark up to 4.2 embeds Lua 5.1 or 5.2 (Debian 12's 4.0 has 5.2); later releases
-- may embed 5.3 or 5.4. Bit operations therefore go through the BitOp library that
-- every Lua-enabled Wireshark preloads as `bit`: bit32 is gone in 5.4 and native
-- operators are a syntax error before 5.3.

local ETHERTYPE = 0x88B5
local VERSION = 1
local HEADER_LEN = 48
local SACK_BLOCK_LEN = 8
local MAX_SACK = 4
local KEY_ID_LEN = 4
local MAC_LEN = 16
local AUTH_LEN = KEY_ID_LEN + MAC_LEN
local CRC_LEN = 4

local FLAG_AUTH = 0x0001
local FLAG_LAST_FRAGMENT = 0x0002
local FLAG_ACK_VALID = 0x0004
local FLAG_ACK_REQUEST = 0x0008
local FLAG_RETRANSMIT = 0x0010
local FLAG_BATCH = 0x0020
local BATCH_LEN_LEN = 2

local swha = Proto("swha", "swha HA control protocol")

local type_names = {
    [1] = "Hello",
    [2] = "HelloAck",
    [3] = "Data",
    [4] = "Ack",
    [5] = "Heartbeat",
    [6] = "Reset",
    [7] = "Close",
}

-- Same numbering as Wireshark's own checksum status fields (tcp.checksum.status etc.),
-- so filters written for those read the same here.
local CRC_BAD, CRC_GOOD, CRC_UNVERIFIED = 0, 1, 2
local crc_status_names = { [CRC_BAD] = "Bad", [CRC_GOOD] = "Good", [CRC_UNVERIFIED] = "Unverified" }

-- Order matters: it is the order of the names in the Info column.
local flag_names = {
    { FLAG_AUTH, "Auth" },
    { FLAG_LAST_FRAGMENT, "LastFragment" },
    { FLAG_ACK_VALID, "AckValid" },
    { FLAG_ACK_REQUEST, "AckRequest" },
    { FLAG_RETRANSMIT, "Retransmit" },
    { FLAG_BATCH, "Batch" },
}

local f = {
    version = ProtoField.uint8("swha.version", "Version", base.DEC),
    type = ProtoField.uint8("swha.type", "Type", base.DEC, type_names),
    flags = ProtoField.uint16("swha.flags", "Flags", base.HEX),
    flag_auth = ProtoField.bool("swha.flags.auth", "Auth", 16, nil, FLAG_AUTH,
        "An authentication trailer follows the payload"),
    flag_last_fragment = ProtoField.bool("swha.flags.last_fragment", "LastFragment", 16, nil,
        FLAG_LAST_FRAGMENT, "This fragment ends its message"),
    flag_ack_valid = ProtoField.bool("swha.flags.ack_valid", "AckValid", 16, nil, FLAG_ACK_VALID,
        "Ack and SACK carry a valid acknowledgment"),
    flag_ack_request = ProtoField.bool("swha.flags.ack_request", "AckRequest", 16, nil,
        FLAG_ACK_REQUEST, "The receiver should acknowledge at once"),
    flag_retransmit = ProtoField.bool("swha.flags.retransmit", "Retransmit", 16, nil,
        FLAG_RETRANSMIT, "The frame was sent before"),
    flag_batch = ProtoField.bool("swha.flags.batch", "Batch", 16, nil, FLAG_BATCH,
        "The payload holds several whole messages, each with a 16-bit length prefix"),
    sack_count = ProtoField.uint8("swha.sack_count", "SACK count", base.DEC),
    reserved = ProtoField.uint8("swha.reserved", "Reserved", base.HEX),
    payload_len = ProtoField.uint16("swha.payload_len", "Payload length", base.DEC),
    node_id = ProtoField.uint64("swha.node_id", "Sender node ID", base.HEX),
    epoch = ProtoField.uint32("swha.epoch", "Epoch", base.DEC),
    frag_offset = ProtoField.uint32("swha.frag_offset", "Fragment offset", base.DEC),
    seq = ProtoField.uint64("swha.seq", "Sequence number", base.DEC),
    ack = ProtoField.uint64("swha.ack", "Cumulative ack", base.DEC),
    txn_id = ProtoField.uint64("swha.txn_id", "Transaction ID", base.DEC),
    sack_start = ProtoField.uint64("swha.sack.start", "SACK start", base.DEC),
    sack_end = ProtoField.uint64("swha.sack.end", "SACK end", base.DEC),
    payload = ProtoField.bytes("swha.payload", "Payload"),
    batch_count = ProtoField.uint16("swha.batch.count", "Messages in batch", base.DEC),
    batch_msg_len = ProtoField.uint16("swha.batch.msg_len", "Message length", base.DEC),
    batch_msg = ProtoField.bytes("swha.batch.msg", "Message"),
    auth_key_id = ProtoField.uint32("swha.auth.key_id", "Key ID", base.DEC),
    auth_hmac = ProtoField.bytes("swha.auth.hmac", "HMAC-SHA256 (truncated)"),
    crc = ProtoField.uint32("swha.crc", "CRC32C", base.HEX),
    crc_status = ProtoField.uint8("swha.crc.status", "CRC status", base.DEC, crc_status_names),
    padding = ProtoField.bytes("swha.padding", "Ethernet padding (ignored)"),
}
swha.fields = f

local e = {
    crc_bad = ProtoExpert.new("swha.crc.bad", "Bad CRC32C",
        expert.group.CHECKSUM, expert.severity.ERROR),
    version_bad = ProtoExpert.new("swha.version.bad", "Unsupported swha version",
        expert.group.MALFORMED, expert.severity.ERROR),
    length_bad = ProtoExpert.new("swha.length.bad", "swha PDU runs past the end of the frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    sack_count_bad = ProtoExpert.new("swha.sack_count.bad", "More than 4 SACK blocks",
        expert.group.MALFORMED, expert.severity.ERROR),
    sack_bad = ProtoExpert.new("swha.sack.bad", "SACK block empty, inverted or starting at the ack",
        expert.group.MALFORMED, expert.severity.WARN),
    batch_bad = ProtoExpert.new("swha.batch.bad", "Batch record runs past the payload",
        expert.group.MALFORMED, expert.severity.ERROR),
    type_unknown = ProtoExpert.new("swha.type.unknown", "Message type unknown to version 1",
        expert.group.PROTOCOL, expert.severity.WARN),
}
swha.experts = e

swha.prefs.ethertypes = Pref.string("Extra EtherTypes", "",
    "Comma-separated EtherTypes to decode as swha in addition to 0x88B5, e.g. 0x88B6,0x88B7 "
        .. "(deployments that already use 0x88B5 configure another one)")

-- CRC32C (Castagnoli), reflected polynomial 0x82F63B78, as Go's hash/crc32. BitOp
-- returns signed 32-bit numbers; only the final value needs mapping back to unsigned.
local crc_table = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit.band(c, 1) ~= 0 then
            c = bit.bxor(bit.rshift(c, 1), 0x82F63B78)
        else
            c = bit.rshift(c, 1)
        end
    end
    crc_table[i] = c
end

local function crc32c(s)
    local crc = 0xFFFFFFFF
    for i = 1, #s do
        crc = bit.bxor(crc_table[bit.band(bit.bxor(crc, s:byte(i)), 0xFF)], bit.rshift(crc, 8))
    end
    return bit.bnot(crc) % 4294967296
end

local function flags_text(flags)
    local names = {}
    for _, fl in ipairs(flag_names) do
        if bit.band(flags, fl[1]) ~= 0 then
            names[#names + 1] = fl[2]
        end
    end
    return table.concat(names, ", ")
end

local data = Dissector.get("data")

-- A batch payload is a run of whole messages, each a 16-bit length and its bytes;
-- the session packs small messages this way so they do not cost a frame each.
local function add_batch(parent, tvb, off, len)
    local stop = off + len
    local n = 0
    local records = {}
    while off < stop do
        if off + BATCH_LEN_LEN > stop then
            parent:add_proto_expert_info(e.batch_bad)
            break
        end
        local msg_len = tvb(off, BATCH_LEN_LEN):uint()
        if off + BATCH_LEN_LEN + msg_len > stop then
            parent:add(f.batch_msg_len, tvb(off, BATCH_LEN_LEN)):add_proto_expert_info(e.batch_bad)
            break
        end
        records[#records + 1] = { off, msg_len }
        off = off + BATCH_LEN_LEN + msg_len
        n = n + 1
    end
    parent:add(f.batch_count, n):set_generated()
    for i, r in ipairs(records) do
        local item = parent:add(tvb(r[1], BATCH_LEN_LEN + r[2]), string.format("Message %d (%d bytes)", i, r[2]))
        item:add(f.batch_msg_len, tvb(r[1], BATCH_LEN_LEN))
        if r[2] > 0 then
            item:add(f.batch_msg, tvb(r[1] + BATCH_LEN_LEN, r[2]))
        end
    end
end

function swha.dissector(tvb, pinfo, tree)
    local frame_len = tvb:reported_length_remaining()
    -- Less than frame_len when the capture's snap length cut the frame short. Every
    -- range must be checked against it: a TvbRange past the captured bytes is a Lua
    -- error, not the "[Packet size limited during capture]" a C dissector gets.
    local captured = tvb:len()
    if captured < 1 then
        return 0
    end
    pinfo.cols.protocol = "SWHA"
    local root = tree:add(swha, tvb())

    local version = tvb(0, 1):uint()
    local version_item = root:add(f.version, tvb(0, 1))
    if version ~= VERSION or frame_len < HEADER_LEN + CRC_LEN or captured < HEADER_LEN then
        if version ~= VERSION then
            -- Another version may lay out everything after this byte differently.
            version_item:add_proto_expert_info(e.version_bad)
            pinfo.cols.info = string.format("Unsupported version %d", version)
        elseif frame_len < HEADER_LEN + CRC_LEN then
            root:add_proto_expert_info(e.length_bad)
            pinfo.cols.info = "Truncated header"
        else
            pinfo.cols.info = "Header not captured"
        end
        if captured > 1 then
            data:call(tvb(1):tvb(), pinfo, tree)
        end
        return frame_len
    end

    local msg_type = tvb(1, 1):uint()
    local flags = tvb(2, 2):uint()
    local sack_count = tvb(4, 1):uint()
    local payload_len = tvb(6, 2):uint()
    local ack = tvb(32, 8):uint64()
    local auth = bit.band(flags, FLAG_AUTH) ~= 0

    local type_item = root:add(f.type, tvb(1, 1))
    if not type_names[msg_type] then
        type_item:add_proto_expert_info(e.type_unknown)
    end

    local flags_item = root:add(f.flags, tvb(2, 2))
    flags_item:append_text(" (" .. flags_text(flags) .. ")")
    flags_item:add(f.flag_auth, tvb(2, 2))
    flags_item:add(f.flag_last_fragment, tvb(2, 2))
    flags_item:add(f.flag_ack_valid, tvb(2, 2))
    flags_item:add(f.flag_ack_request, tvb(2, 2))
    flags_item:add(f.flag_retransmit, tvb(2, 2))
    flags_item:add(f.flag_batch, tvb(2, 2))

    local sack_item = root:add(f.sack_count, tvb(4, 1))
    if sack_count > MAX_SACK then
        sack_item:add_proto_expert_info(e.sack_count_bad)
    end
    root:add(f.reserved, tvb(5, 1))
    local payload_len_item = root:add(f.payload_len, tvb(6, 2))
    root:add(f.node_id, tvb(8, 8))
    root:add(f.epoch, tvb(16, 4))
    root:add(f.frag_offset, tvb(20, 4))
    root:add(f.seq, tvb(24, 8))
    root:add(f.ack, tvb(32, 8))
    root:add(f.txn_id, tvb(40, 8))

    local info = string.format("%s seq=%s ack=%s txn=%s frag=%d",
        type_names[msg_type] or string.format("Type(%d)", msg_type),
        tostring(tvb(24, 8):uint64()), tostring(ack), tostring(tvb(40, 8):uint64()),
        tvb(20, 4):uint())
    if flags ~= 0 then
        info = info .. " [" .. flags_text(flags) .. "]"
    end

    -- The header carries the payload length because Ethernet pads short frames; the
    -- frame length says nothing about where the PDU ends.
    local sack_off = HEADER_LEN
    local payload_off = sack_off + sack_count * SACK_BLOCK_LEN
    local trailer_off = payload_off + payload_len
    local crc_off = trailer_off + (auth and AUTH_LEN or 0)
    local pdu_len = crc_off + CRC_LEN
    if pdu_len > frame_len then
        payload_len_item:add_proto_expert_info(e.length_bad)
        pinfo.cols.info = info .. " [TRUNCATED]"
        root:set_len(captured)
        if captured > sack_off then
            data:call(tvb(sack_off):tvb(), pinfo, tree)
        end
        return frame_len
    end
    root:set_len(pdu_len)

    if sack_count > 0 and payload_off <= captured then
        local blocks = root:add(tvb(sack_off, sack_count * SACK_BLOCK_LEN), "SACK blocks")
        for i = 0, sack_count - 1 do
            local off = sack_off + i * SACK_BLOCK_LEN
            local start_delta = tvb(off, 4):uint()
            local end_delta = tvb(off + 4, 4):uint()
            local block = blocks:add(tvb(off, SACK_BLOCK_LEN),
                string.format("SACK block %d: [ack+%d, ack+%d)", i, start_delta, end_delta))
            -- On the wire both ends are deltas from the ack; the fields hold the
            -- absolute sequence numbers, which is what one filters and compares on.
            block:add(f.sack_start, tvb(off, 4), ack + start_delta)
                :append_text(string.format(" (ack+%d)", start_delta))
            block:add(f.sack_end, tvb(off + 4, 4), ack + end_delta)
                :append_text(string.format(" (ack+%d)", end_delta))
            if start_delta == 0 or end_delta <= start_delta then
                block:add_proto_expert_info(e.sack_bad)
            end
        end
    end

    if payload_len > 0 and trailer_off <= captured then
        local payload_item = root:add(f.payload, tvb(payload_off, payload_len))
        if bit.band(flags, FLAG_BATCH) ~= 0 then
            add_batch(payload_item, tvb, payload_off, payload_len)
        end
    end

    if auth and crc_off <= captured then
        local trailer = root:add(tvb(trailer_off, AUTH_LEN), "Authentication trailer")
        trailer:add(f.auth_key_id, tvb(trailer_off, KEY_ID_LEN))
        trailer:add(f.auth_hmac, tvb(trailer_off + KEY_ID_LEN, MAC_LEN))
    end

    local status = CRC_UNVERIFIED
    if pdu_len > captured then
        info = info .. " [not all captured]"
    else
        local crc_item = root:add(f.crc, tvb(crc_off, CRC_LEN))
        local crc = tvb(crc_off, CRC_LEN):uint()
        local computed = crc32c(tvb:raw(0, crc_off))
        if crc == computed then
            status = CRC_GOOD
            crc_item:append_text(" [correct]")
        else
            status = CRC_BAD
            crc_item:append_text(string.format(" [incorrect, should be 0x%08x]", computed))
            crc_item:add_proto_expert_info(e.crc_bad)
            info = info .. " [BAD CRC]"
        end
    end
    root:add(f.crc_status, status):set_generated()

    -- A Lua dissector cannot shrink its tvb the way C dissectors do with
    -- set_actual_length(), so the Ethernet dissector would never show what follows
    -- the PDU; show it here, outside the PDU's range, and keep it out of the CRC.
    if captured > pdu_len then
        root:add(f.padding, tvb(pdu_len))
    end

    pinfo.cols.info = info
    return frame_len
end

local ethertypes = DissectorTable.get("ethertype")
ethertypes:add(ETHERTYPE, swha)

local extra = {}

local function parse_ethertypes(s)
    local list = {}
    for tok in string.gmatch(s, "[^,%s]+") do
        local n = tonumber(tok)
        -- Below 0x0600 the field is an 802.3 length, not an EtherType.
        if n and n >= 0x0600 and n <= 0xFFFF and n ~= ETHERTYPE then
            list[#list + 1] = n
        end
    end
    return list
end

function swha.prefs_changed()
    for _, n in ipairs(extra) do
        ethertypes:remove(n, swha)
    end
    extra = parse_ethertypes(swha.prefs.ethertypes)
    for _, n in ipairs(extra) do
        ethertypes:add(n, swha)
    end
end

// Trace comparison: expected (the oracle's) against actual (the simulator's), step by step and
// field by field, under one rule per field (diff_rules()). Pure functions of two Trace values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparsemem/trace.h"

namespace sparsemem {

// How a field is compared. Every field of the trace layout has one row in diff_rules(); the rows
// and their reasons are documented in docs/conformance.md.
enum class DiffRuleKind {
  Exact,      // equal values; one observation
  Masked,     // equal after a named mask removes what cannot match (timestamps, UUIDs, paths...)
  Delta,      // equal change since the previous step; step 0's absolute value is not compared
  Identity,   // names what is compared (step name, command text): a difference is one mismatch,
              // agreement is not counted
  Filtered,   // only the lines that match dmesg_patterns() are compared, as a sequence
  Redundant,  // a second copy of a compared field: each trace's copy must agree with it (a
              // disagreement is one mismatch), agreement is not counted
  Excluded,   // not compared: timing or allocator noise, with the reason in the row
};
std::string_view diff_rule_kind_name(DiffRuleKind k);  // "exact", "masked", ...

struct DiffRule {
  std::string_view field;  // "meminfo.MemTotal", "zones.managed", "command.stdout", ...
  DiffRuleKind kind;
  std::string_view reason;
};
// The rule table, in documentation order. Fields of a keyed family that have no row of their own
// ("meminfo.Foo", an unmodelled key) use the family's "*" row, which is Exact.
std::span<const DiffRule> diff_rules();
// The row for a field, falling back to its family's "*" row; nullptr if neither exists.
const DiffRule* find_diff_rule(std::string_view field);

// A kernel message the model produces. Lines of dmesg that match no pattern are not compared.
struct DmesgPattern {
  std::string_view source;  // kernel file and function that prints it (6.1)
  std::string_view regex;   // ECMAScript, matched against the line without its timestamp
  std::string_view mask;    // optional ECMAScript: the part replaced by `mask_as` before comparing
  std::string_view mask_as;
};
std::span<const DmesgPattern> dmesg_patterns();
// The comparable text of a dmesg line: timestamp removed, masked as its pattern says; nullopt when
// no pattern matches.
std::optional<std::string> dmesg_comparable(std::string_view line);

struct DiffOptions {
  bool verbose = false;  // per-step totals and complete values of differing command output
};

struct DiffResult {
  uint64_t matched = 0;
  uint64_t mismatched = 0;
  std::vector<std::string> lines;  // one per difference (plus per-step totals when verbose)
};

// Compares two traces. Every compared observation of the expected trace is matched or mismatched;
// an observation only the actual trace has is one mismatch; a step or command present in one trace
// only is reported once and all its observations count as mismatched.
DiffResult diff_traces(const Trace& expected, const Trace& actual, const DiffOptions& opts = {});
// The report: the difference lines, then "observations: N matched, M mismatched", each ending in
// a newline.
std::string format_diff(const DiffResult& r);

}  // namespace sparsemem

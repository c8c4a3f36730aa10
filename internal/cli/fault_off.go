//go:build !faultinject

package cli

// faultHook is the fault-injection switch of test builds (see fault_on.go); release
// builds have none.
func faultHook(func(string) string) func(step string) { return nil }

// faultWanted says a fault of test builds is asked for; never in release builds.
func faultWanted(func(string) string, string) bool { return false }

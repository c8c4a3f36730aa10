//go:build !faultinject

package cli

// faultHook is the fault-injection switch of test builds (see fault_on.go); release
// builds have none.
func faultHook(func(string) string) func(step string) { return nil }

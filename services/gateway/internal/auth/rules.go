package auth

import (
	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
)

// Rule is what one public method requires.
type Rule struct {
	// Scope the calling token must grant; empty: any valid token.
	Scope apitoken.Scope
	// Namespaced: the request's namespace (empty means default) must be one the token may
	// use, or the call is NOT_FOUND, as for a resource that does not exist.
	Namespaced bool
	// Mutation: the call is recorded in the audit trail.
	Mutation bool
	// NoToken: the call needs no token (the login-code exchange, whose code is the credential).
	NoToken bool
	// EveryNamespace: the token must cover every namespace (`*`), as creating one does.
	EveryNamespace bool
}

// Rules maps every public gRPC method (full name) to what it requires. A method missing here
// is refused (PERMISSION_DENIED), so a new RPC is closed until someone decides its rule;
// TestEveryPublicMethodHasARule enumerates the services from their descriptors.
var Rules = map[string]Rule{
	cairnv1.WorkflowService_ApplyWorkflow_FullMethodName:    {Scope: apitoken.WorkflowsWrite, Namespaced: true, Mutation: true},
	cairnv1.WorkflowService_ValidateWorkflow_FullMethodName: {Scope: apitoken.WorkflowsRead, Namespaced: true},
	cairnv1.WorkflowService_ListWorkflows_FullMethodName:    {Scope: apitoken.WorkflowsRead, Namespaced: true},
	cairnv1.WorkflowService_GetWorkflow_FullMethodName:      {Scope: apitoken.WorkflowsRead, Namespaced: true},

	cairnv1.RunService_StartRun_FullMethodName:     {Scope: apitoken.RunsWrite, Namespaced: true, Mutation: true},
	cairnv1.RunService_ListRuns_FullMethodName:     {Scope: apitoken.RunsRead, Namespaced: true},
	cairnv1.RunService_GetRun_FullMethodName:       {Scope: apitoken.RunsRead, Namespaced: true},
	cairnv1.RunService_CancelRun_FullMethodName:    {Scope: apitoken.RunsWrite, Namespaced: true, Mutation: true},
	cairnv1.RunService_RetryRun_FullMethodName:     {Scope: apitoken.RunsWrite, Namespaced: true, Mutation: true},
	cairnv1.RunService_ListAttempts_FullMethodName: {Scope: apitoken.RunsRead, Namespaced: true},
	cairnv1.RunService_WatchRun_FullMethodName:     {Scope: apitoken.RunsRead, Namespaced: true},

	cairnv1.DeadLetterService_ListDeadLetters_FullMethodName:  {Scope: apitoken.DeadLettersRead, Namespaced: true},
	cairnv1.DeadLetterService_GetDeadLetter_FullMethodName:    {Scope: apitoken.DeadLettersRead, Namespaced: true},
	cairnv1.DeadLetterService_ReplayDeadLetter_FullMethodName: {Scope: apitoken.DeadLettersWrite, Namespaced: true, Mutation: true},
	cairnv1.DeadLetterService_PurgeDeadLetter_FullMethodName:  {Scope: apitoken.DeadLettersWrite, Namespaced: true, Mutation: true},

	cairnv1.ClusterService_ListWorkers_FullMethodName: {Scope: apitoken.ClusterRead},
	cairnv1.ClusterService_GetCluster_FullMethodName:  {Scope: apitoken.ClusterRead},

	cairnv1.NamespaceService_CreateNamespace_FullMethodName: {Scope: apitoken.Admin, EveryNamespace: true, Mutation: true},
	cairnv1.NamespaceService_DeleteNamespace_FullMethodName: {Scope: apitoken.Admin, Namespaced: true, Mutation: true},
	cairnv1.NamespaceService_GetNamespace_FullMethodName:    {Namespaced: true},
	cairnv1.NamespaceService_ListNamespaces_FullMethodName:  {}, // lists only the token's own namespaces

	cairnv1.AuthService_CreateToken_FullMethodName:       {Scope: apitoken.TokensWrite, Mutation: true},
	cairnv1.AuthService_ListTokens_FullMethodName:        {Scope: apitoken.TokensWrite},
	cairnv1.AuthService_RevokeToken_FullMethodName:       {Scope: apitoken.TokensWrite, Mutation: true},
	cairnv1.AuthService_WhoAmI_FullMethodName:            {},
	cairnv1.AuthService_CreateLoginCode_FullMethodName:   {Scope: apitoken.TokensWrite, Mutation: true},
	cairnv1.AuthService_ExchangeLoginCode_FullMethodName: {NoToken: true, Mutation: true},
	cairnv1.AuthService_ListAuditEvents_FullMethodName:   {Scope: apitoken.Admin, EveryNamespace: true},

	// A secret's value is in SetSecret's request only; the audit event records its name
	// (resourceOf reads identifying fields, never "value").
	cairnv1.SecretService_SetSecret_FullMethodName:     {Scope: apitoken.SecretsWrite, Namespaced: true, Mutation: true},
	cairnv1.SecretService_ListSecrets_FullMethodName:   {Scope: apitoken.SecretsRead, Namespaced: true},
	cairnv1.SecretService_DeleteSecret_FullMethodName:  {Scope: apitoken.SecretsWrite, Namespaced: true, Mutation: true},
	cairnv1.SecretService_ResealSecrets_FullMethodName: {Scope: apitoken.Admin, EveryNamespace: true, Mutation: true},
}

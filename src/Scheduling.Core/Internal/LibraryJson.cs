using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Scheduling.Internal;

/// <summary>
/// Payloads and results go through the serialiser options' own resolver (<see cref="JsonSerializerOptions.GetTypeInfo"/>):
/// a user's source-generated context set as <see cref="JsonSerializerOptions.TypeInfoResolver"/> serves
/// them, so the handler path needs no reflection (trimmed and native AOT hosts); without one, the
/// reflection resolver, as before. Shared with Scheduling.Testing, so a test reads payloads as a worker does.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class PayloadSerializer
{
    /// <summary>The options when <see cref="JobQueueOptions.UseJsonSerializerOptions"/> is not set: System.Text.Json's web defaults.</summary>
    public static readonly JsonSerializerOptions Default = new(JsonSerializerDefaults.Web);

    /// <summary><paramref name="value"/> as JSON, by its runtime <paramref name="type"/>.</summary>
    public static string Serialize(object value, Type type, JsonSerializerOptions options) => JsonSerializer.Serialize(value, TypeInfo(type, options));

    /// <summary><paramref name="value"/> as JSON.</summary>
    public static string Serialize<T>(T value, JsonSerializerOptions options) => JsonSerializer.Serialize(value, TypeInfo<T>(options));

    /// <summary><paramref name="json"/> read as <typeparamref name="T"/>.</summary>
    public static T? Deserialize<T>(string json, JsonSerializerOptions options) => JsonSerializer.Deserialize(json, TypeInfo<T>(options));

    /// <summary>The options' contract for <typeparamref name="T"/>; throws <see cref="NotSupportedException"/> naming the type when their resolver does not know it.</summary>
    public static JsonTypeInfo<T> TypeInfo<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)Ready(options).GetTypeInfo(typeof(T));

    private static JsonTypeInfo TypeInfo(Type type, JsonSerializerOptions options) => Ready(options).GetTypeInfo(type);

    /// <summary>
    /// Locks <paramref name="options"/> the way <c>JsonSerializer.Serialize(value, options)</c> would: without a
    /// resolver they get the reflection one, but only while reflection is enabled (the feature switch a
    /// trimmed or AOT app turns off); there a missing resolver is a clear error instead.
    /// </summary>
    private static JsonSerializerOptions Ready(JsonSerializerOptions options)
    {
        if (options.IsReadOnly) return options;
        lock (options)
        {
            if (options.IsReadOnly) return options;
            if (options.TypeInfoResolver is null)
            {
                if (!JsonSerializer.IsReflectionEnabledByDefault)
                    throw new InvalidOperationException("Reflection-based JSON is disabled in this app, so the payload serialiser options need a TypeInfoResolver: give a source-generated context naming every payload and result type with UseJsonSerializerOptions.");
                options.TypeInfoResolver = ReflectionResolver();
            }

            options.MakeReadOnly();
            return options;
        }
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Reached only while reflection-based serialisation is enabled, as JsonSerializer's own fallback.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Reached only while reflection-based serialisation is enabled, as JsonSerializer's own fallback.")]
    private static DefaultJsonTypeInfoResolver ReflectionResolver() => new();
}

/// <summary>One error entry as stored in a job's error history (<see cref="JobTransitions.ErrorsToJson"/>).</summary>
internal sealed record StoredError(int Attempt, DateTimeOffset At, string? Message);

/// <summary>The library's own JSON (error history, progress metadata), source-generated: no reflection, trim- and AOT-safe.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(StoredError))]
[JsonSerializable(typeof(StoredError[]))]
internal sealed partial class ErrorJsonContext : JsonSerializerContext;

/// <summary>Progress metadata as stored: a flat object of strings, keys in ordinal order, written with the default options.</summary>
[JsonSerializable(typeof(SortedDictionary<string, string>))]
internal sealed partial class MetadataJsonContext : JsonSerializerContext;

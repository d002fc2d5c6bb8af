<?php
/**
 * Forms: wp_posts rows of type 'wpforms' whose post_content is the form's JSON.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Create, read and decode forms the way WPForms stores them.
 */
final class WPForms_Emulator_Forms {

	/**
	 * Field types the emulator knows (Lite lacks 'file-upload').
	 */
	const FIELD_TYPES = array( 'name', 'email', 'text', 'textarea', 'file-upload' );

	/**
	 * Register the post type as WPForms does: not public, no UI of its own.
	 */
	public static function register_post_type(): void {
		register_post_type(
			'wpforms',
			array(
				'label'               => 'WPForms',
				'public'              => false,
				'exclude_from_search' => true,
				'show_ui'             => false,
				'show_in_admin_bar'   => false,
				'rewrite'             => false,
				'query_var'           => false,
				'can_export'          => false,
				'supports'            => array( 'title' ),
				'capability_type'     => 'post',
			)
		);
	}

	/**
	 * The form post, or null when there is no such form.
	 *
	 * @param int $form_id Form (post) id.
	 */
	public static function get( int $form_id ): ?WP_Post {
		$post = $form_id > 0 ? get_post( $form_id ) : null;
		return ( $post instanceof WP_Post && 'wpforms' === $post->post_type ) ? $post : null;
	}

	/**
	 * The form data as wpforms_decode() returns it (decoded, then unslashed).
	 *
	 * @param WP_Post $form Form post.
	 *
	 * @return array|false
	 */
	public static function decode( WP_Post $form ) {
		if ( '' === $form->post_content ) {
			return false;
		}
		$data = json_decode( $form->post_content, true );
		return is_array( $data ) ? wp_unslash( $data ) : false;
	}

	/**
	 * Whether the form data has a field of the given type.
	 *
	 * @param array  $form_data Form data.
	 * @param string $type      Field type.
	 */
	public static function has_field_type( array $form_data, string $type ): bool {
		foreach ( (array) ( $form_data['fields'] ?? array() ) as $field ) {
			if ( is_array( $field ) && ( $field['type'] ?? '' ) === $type ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * Create a form.
	 *
	 * @param array $args {
	 *     @type string $title            Form title.
	 *     @type array  $fields           Field settings, each with at least 'id' and 'type'.
	 *     @type bool   $disable_entries  Pro: do not store entries.
	 *     @type bool   $store_spam       Keep spam entries (status 'spam').
	 *     @type bool   $ajax_submit      The form's "AJAX form submission" setting.
	 *     @type string $status           'publish' or 'draft'.
	 * }
	 *
	 * @return int|WP_Error The form id.
	 */
	public static function create( array $args ) {
		$title  = (string) ( $args['title'] ?? 'Form' );
		$status = (string) ( $args['status'] ?? 'publish' );
		if ( ! in_array( $status, array( 'publish', 'draft' ), true ) ) {
			return new WP_Error( 'wpforms_emulator_status', "form status must be 'publish' or 'draft', not '$status'" );
		}
		$fields = array();
		$next   = 0;
		foreach ( (array) ( $args['fields'] ?? array() ) as $field ) {
			$field = (array) $field;
			$id    = isset( $field['id'] ) ? (string) $field['id'] : '';
			$type  = (string) ( $field['type'] ?? '' );
			if ( '' === $id || ! ctype_digit( $id ) ) {
				return new WP_Error( 'wpforms_emulator_field', 'every field needs a numeric id' );
			}
			if ( ! in_array( $type, self::FIELD_TYPES, true ) ) {
				return new WP_Error( 'wpforms_emulator_field', "unknown field type '$type'" );
			}
			if ( isset( $fields[ $id ] ) ) {
				return new WP_Error( 'wpforms_emulator_field', "duplicate field id $id" );
			}
			foreach ( $field as $key => $value ) {
				if ( ! is_scalar( $value ) ) {
					return new WP_Error( 'wpforms_emulator_field', "field $id: setting '$key' must be a string" );
				}
				$field[ $key ] = (string) $value;
			}
			$field['id']   = $id;
			$fields[ $id ] = $field;
			$next          = max( $next, (int) $id + 1 );
		}
		$form_data = array(
			'fields'   => $fields,
			'settings' => array(
				'form_title'         => $title,
				'disable_entries'    => empty( $args['disable_entries'] ) ? '0' : '1',
				'store_spam_entries' => empty( $args['store_spam'] ) ? '0' : '1',
				'ajax_submit'        => empty( $args['ajax_submit'] ) ? '0' : '1',
			),
		);
		if ( ! WPForms_Emulator::is_pro() && self::has_field_type( $form_data, 'file-upload' ) ) {
			return new WP_Error( 'wpforms_emulator_lite', 'WPForms Lite has no file-upload field: this form needs Pro mode' );
		}

		// The JSON must reach the database untouched: no kses on it (WPForms saves as an admin).
		$kses = false !== has_filter( 'content_save_pre', 'wp_filter_post_kses' );
		if ( $kses ) {
			kses_remove_filters();
		}
		try {
			return self::insert( $title, $status, $next, $form_data );
		} finally {
			if ( $kses ) {
				kses_init_filters();
			}
		}
	}

	/**
	 * Insert the post, then write the content that carries its id (as WPForms does).
	 *
	 * @param string $title     Form title.
	 * @param string $status    Post status.
	 * @param int    $next      The next free field id.
	 * @param array  $form_data Fields and settings.
	 *
	 * @return int|WP_Error
	 */
	private static function insert( string $title, string $status, int $next, array $form_data ) {
		$form_id = wp_insert_post(
			array(
				'post_type'    => 'wpforms',
				'post_status'  => $status,
				'post_title'   => $title,
				'post_content' => '',
			),
			true
		);
		if ( is_wp_error( $form_id ) ) {
			return $form_id;
		}
		$form_data = array_merge(
			array(
				'id'       => (int) $form_id,
				'field_id' => $next,
			),
			$form_data
		);
		$updated   = wp_update_post(
			array(
				'ID'           => $form_id,
				'post_content' => wp_slash( wp_json_encode( $form_data ) ),
			),
			true
		);
		if ( is_wp_error( $updated ) ) {
			return $updated;
		}
		return (int) $form_id;
	}
}
